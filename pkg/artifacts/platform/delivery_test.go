package platform

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestGitopsHoldsNoGoCode(t *testing.T) {
	err := filepath.WalkDir(filepath.Join(repoRoot, "gitops"), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") {
			t.Errorf("%s: gitops/ holds deployable artifacts only", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCIWorkflowDeliversWithOIDC(t *testing.T) {
	wf, err := LoadYAML(filepath.Join(repoRoot, ".github", "workflows", "ci.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	jobs, ok := Lookup(wf, "jobs")
	if !ok {
		t.Fatal("no jobs")
	}
	// lint -> build -> test -> image -> deploy
	chain := []string{"lint", "build", "test", "image", "deploy"}
	for i, name := range chain {
		job, ok := Lookup(jobs, name)
		if !ok {
			t.Fatalf("no %s job", name)
		}
		if i == 0 {
			continue
		}
		needs, _ := Lookup(job, "needs")
		if n, _ := needs.(string); n != chain[i-1] && !slices.Contains(asList(needs), any(chain[i-1])) {
			t.Errorf("job %s needs %v, want %s", name, needs, chain[i-1])
		}
	}
	raw, err := os.ReadFile(filepath.Join(repoRoot, ".github", "workflows", "ci.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, banned := range []string{"aws-access-key-id", "aws-secret-access-key", "AWS_SECRET_ACCESS_KEY", "secrets.AWS"} {
		if strings.Contains(string(raw), banned) {
			t.Errorf("ci.yaml mentions %s: AWS access must come from the OIDC role only", banned)
		}
	}
	image, _ := Lookup(jobs, "image")
	if perm, _ := LookupString(image, "permissions", "id-token"); perm != "write" {
		t.Errorf("image job id-token permission = %q, want write (OIDC)", perm)
	}
	var oidc, push bool
	for _, step := range asList(mustLookup(t, image, "steps")) {
		uses, _ := LookupString(step, "uses")
		switch {
		case strings.HasPrefix(uses, "aws-actions/configure-aws-credentials@"):
			role, _ := LookupString(step, "with", "role-to-assume")
			oidc = role != ""
		case strings.HasPrefix(uses, "docker/build-push-action@"):
			file, _ := LookupString(step, "with", "file")
			tags, _ := LookupString(step, "with", "tags")
			push = file == "gitops/images/Dockerfile" && strings.Contains(tags, "steps.ecr.outputs.registry")
		}
	}
	if !oidc || !push {
		t.Errorf("image job: OIDC role step %v, ECR push of gitops/images/Dockerfile %v", oidc, push)
	}
	deploy, _ := Lookup(jobs, "deploy")
	var script strings.Builder
	for _, step := range asList(mustLookup(t, deploy, "steps")) {
		run, _ := LookupString(step, "run")
		script.WriteString(run)
	}
	for _, want := range []string{"gitops/envs/${DEPLOY_ENV}/${svc}/values.yaml", ".image.tag = strenv(TAG)", "git push"} {
		if !strings.Contains(script.String(), want) {
			t.Errorf("deploy job does not %q", want)
		}
	}
	if perm, _ := LookupString(deploy, "permissions", "contents"); perm != "write" {
		t.Errorf("deploy job contents permission = %q, want write", perm)
	}
}

func TestImageIsStaticNonRootAndMinimal(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "gitops", "images", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var froms []string
	var user, entrypoint string
	cgoOff := false
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, line)
		case "USER":
			user = f[1]
		case "ENTRYPOINT":
			entrypoint = line
		case "ENV":
			cgoOff = cgoOff || slices.Contains(f, "CGO_ENABLED=0")
		}
	}
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, got %v", froms)
	}
	final := froms[len(froms)-1]
	if !strings.Contains(final, "gcr.io/distroless/static") || !strings.Contains(final, "nonroot") {
		t.Errorf("runtime image %q, want distroless static nonroot", final)
	}
	if user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
		t.Errorf("USER %q, want a non-root uid", user)
	}
	if !cgoOff {
		t.Error("the build does not set CGO_ENABLED=0")
	}
	if !strings.Contains(entrypoint, `"/app"`) {
		t.Errorf("ENTRYPOINT %q", entrypoint)
	}
}

// TestOpsctlImageHasGit: the agent's canary guard commits rollbacks with the git CLI, so the
// opsctl image is built from the Dockerfile's git stage (git added, still user 65532) and the
// services from its default, distroless stage.
func TestOpsctlImageHasGit(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "gitops", "images", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	stage, stages := "", map[string][]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if strings.EqualFold(f[0], "FROM") {
			stage = f[len(f)-1]
			if len(f) < 4 || !strings.EqualFold(f[len(f)-2], "AS") {
				stage = "(last)"
			}
		}
		stages[stage] = append(stages[stage], line)
	}
	git := strings.Join(stages["git"], "\n")
	if !regexp.MustCompile(`apk add[^\n]* git\b`).MatchString(git) || !strings.Contains(git, "USER 65532:65532") || !strings.Contains(git, `ENTRYPOINT ["/app"]`) {
		t.Errorf("the git stage does not add git and run /app as user 65532:\n%s", git)
	}
	wf, err := LoadYAML(filepath.Join(repoRoot, ".github", "workflows", "ci.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	jobs, _ := Lookup(wf, "jobs")
	image, _ := Lookup(jobs, "image")
	for _, m := range asList(mustLookup(t, image, "strategy", "matrix", "include")) {
		cmd, _ := LookupString(m, "cmd")
		target, _ := LookupString(m, "target")
		switch {
		case cmd == "opsctl" && target != "git":
			t.Errorf("the opsctl image is built with target %q, want git (the agent's guard runs git)", target)
		case cmd != "opsctl" && target != "":
			t.Errorf("%s is built with target %q, want the distroless default", cmd, target)
		}
	}
	var passes bool
	for _, step := range asList(mustLookup(t, image, "steps")) {
		if tgt, _ := LookupString(step, "with", "target"); tgt == "${{ matrix.target }}" {
			passes = true
		}
	}
	if !passes {
		t.Error("the image build does not pass the matrix's target to docker build")
	}
}

func TestGoreleaserConfig(t *testing.T) {
	cfg, err := LoadYAML(filepath.Join(repoRoot, "goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := Lookup(cfg, "version"); v != 2 {
		t.Errorf("version = %v, want 2", v)
	}
	builds := map[string]any{}
	for _, b := range asList(mustLookup(t, cfg, "builds")) {
		id, _ := LookupString(b, "id")
		builds[id] = b
	}
	strs := func(v any) []string {
		var out []string
		for _, x := range asList(v) {
			s, _ := x.(string)
			out = append(out, s)
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		id, main string
		goos     []string
	}{
		{"opsctl", "./cmd/opsctl", []string{"darwin", "linux", "windows"}},
		{"opsctl-sandbox", "./cmd/opsctl-sandbox", []string{"darwin", "linux", "windows"}},
		{"order-service", "./cmd/services/order", []string{"linux"}},
		{"payment-service", "./cmd/services/payment", []string{"linux"}},
		{"product-service", "./cmd/services/product", []string{"linux"}},
	}
	for _, tt := range tests {
		b, ok := builds[tt.id]
		if !ok {
			t.Errorf("no build %s", tt.id)
			continue
		}
		if m, _ := LookupString(b, "main"); m != tt.main {
			t.Errorf("build %s main = %q, want %q", tt.id, m, tt.main)
		}
		if got := strs(mustLookup(t, b, "goos")); !slices.Equal(got, tt.goos) {
			t.Errorf("build %s goos = %v, want %v", tt.id, got, tt.goos)
		}
		if got := strs(mustLookup(t, b, "goarch")); !slices.Equal(got, []string{"amd64", "arm64"}) {
			t.Errorf("build %s goarch = %v", tt.id, got)
		}
		if env := strs(mustLookup(t, b, "env")); !slices.Contains(env, "CGO_ENABLED=0") {
			t.Errorf("build %s is not static", tt.id)
		}
		ldflags := strings.Join(strs(mustLookup(t, b, "ldflags")), " ")
		for _, v := range []string{"Version={{ .Version }}", "Commit={{ .Commit }}", "Date={{ .Date }}"} {
			if !strings.Contains(ldflags, "-X github.com/come2us/opsctl/pkg/buildinfo."+v) {
				t.Errorf("build %s ldflags lack buildinfo.%s", tt.id, v)
			}
		}
	}
	hooks := strings.Join(strs(mustLookup(t, cfg, "before", "hooks")), "\n")
	for _, want := range []string{"./cmd/opsctl completion", "./cmd/opsctl man --dir manpages"} {
		if !strings.Contains(hooks, want) {
			t.Errorf("before hooks do not run %q", want)
		}
	}
	var withDocs bool
	for _, a := range asList(mustLookup(t, cfg, "archives")) {
		var srcs []string
		for _, f := range asList(mustLookup(t, a, "ids")) {
			if f == "opsctl" {
				for _, file := range asList(mustLookup(t, a, "files")) {
					s, _ := LookupString(file, "src")
					srcs = append(srcs, s)
				}
			}
		}
		withDocs = withDocs || (slices.Contains(srcs, "completions/*") && slices.Contains(srcs, "manpages/*"))
	}
	if !withDocs {
		t.Error("the opsctl archive does not carry completions and man pages")
	}
	nfpm := asList(mustLookup(t, cfg, "nfpms"))
	if len(nfpm) == 0 || !slices.Equal(strs(mustLookup(t, nfpm[0], "formats")), []string{"deb", "rpm"}) {
		t.Error("no deb and rpm packages")
	}
	casks := asList(mustLookup(t, cfg, "homebrew_casks"))
	if len(casks) == 0 {
		t.Error("no Homebrew cask")
	}
	// `opsctl sandbox` runs the opsctl-sandbox found beside opsctl: every way opsctl ships
	// carries both.
	for _, a := range asList(mustLookup(t, cfg, "archives")) {
		if ids := strs(mustLookup(t, a, "ids")); slices.Contains(ids, "opsctl") && !slices.Contains(ids, "opsctl-sandbox") {
			t.Errorf("an archive of opsctl lacks opsctl-sandbox: ids %v", ids)
		}
	}
	if len(nfpm) > 0 && !slices.Contains(strs(mustLookup(t, nfpm[0], "ids")), "opsctl-sandbox") {
		t.Error("the deb and rpm packages lack opsctl-sandbox")
	}
	for _, c := range casks {
		if !slices.Contains(strs(mustLookup(t, c, "binaries")), "opsctl-sandbox") {
			t.Error("the Homebrew cask does not install opsctl-sandbox")
		}
	}
	if _, ok := Lookup(cfg, "checksum", "name_template"); !ok {
		t.Error("no checksum file")
	}
}
