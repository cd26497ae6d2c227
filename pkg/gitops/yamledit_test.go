package gitops_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/come2us/opsctl/pkg/gitops"
	"github.com/come2us/opsctl/pkg/goldentest"
)

func TestEditReleaseGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// change edits the Release read from the input.
		change func(r *gitops.Release)
		// changed lists the keys whose lines may differ.
		changed []string
	}{
		{
			name:    "block-comments",
			change:  func(r *gitops.Release) { r.Canary = gitops.Canary{Enabled: true, Tag: "1.1.0", Weight: 10} },
			changed: []string{"enabled:", "tag:", "weight:"},
		},
		{
			name:    "flow",
			change:  func(r *gitops.Release) { r.Canary = gitops.Canary{Enabled: true, Tag: "1.5.0", Weight: 10} },
			changed: []string{"canary:"},
		},
		{
			name:    "single-quoted",
			change:  func(r *gitops.Release) { r.Canary.Weight = 50 },
			changed: []string{"weight:"},
		},
		{
			name:    "crlf",
			change:  func(r *gitops.Release) { r.Canary = gitops.Canary{} },
			changed: []string{"enabled:", "tag:", "weight:"},
		},
		{
			name:    "unicode",
			change:  func(r *gitops.Release) { r.StableTag = "1.1.0"; r.Canary = gitops.Canary{} },
			changed: []string{"image:", "enabled:", "tag:", "weight:"},
		},
		{
			name:    "plain-needs-quotes",
			change:  func(r *gitops.Release) { r.StableTag = "1.10"; r.Canary = gitops.Canary{} },
			changed: []string{"tag:", "enabled:", "weight:"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in, err := os.ReadFile(filepath.Join("testdata", "edit", tt.name+".input.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			orig := bytes.Clone(in)
			rel, err := gitops.ReadRelease(in)
			if err != nil {
				t.Fatal(err)
			}
			want := rel
			tt.change(&want)
			out, err := gitops.EditRelease(in, want)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(in, orig) {
				t.Fatal("EditRelease modified its input")
			}
			got, err := gitops.ReadRelease(out)
			if err != nil {
				t.Fatalf("edited file unreadable: %v", err)
			}
			if got != want {
				t.Errorf("edited file reads %+v, want %+v", got, want)
			}
			assertOnlyLinesChanged(t, in, out, tt.changed)
			// The golden comparison folds CRLF into LF, so line endings are checked here.
			if a, b := bytes.Count(in, []byte("\r\n")), bytes.Count(out, []byte("\r\n")); a != b {
				t.Errorf("the input has %d CRLF line endings, the edited file %d", a, b)
			}
			golden(t, tt.name, out)
		})
	}
}

// assertOnlyLinesChanged checks that in and out have the same lines except lines that contain
// one of keys, and that on those lines everything outside the value is unchanged: the text up
// to the key and any comment after it.
func assertOnlyLinesChanged(t *testing.T, in, out []byte, keys []string) {
	t.Helper()
	a := strings.SplitAfter(string(in), "\n")
	b := strings.SplitAfter(string(out), "\n")
	if len(a) != len(b) {
		t.Fatalf("line count changed: %d -> %d", len(a), len(b))
	}
	for i := range a {
		if a[i] == b[i] {
			continue
		}
		ok := false
		for _, k := range keys {
			if strings.Contains(a[i], k) {
				ok = true
			}
		}
		if !ok {
			t.Errorf("line %d changed but holds none of %v:\n- %q\n+ %q", i+1, keys, a[i], b[i])
			continue
		}
		// The indentation and key, and the comment (if any), must survive.
		prefixA, _, _ := strings.Cut(a[i], ":")
		prefixB, _, _ := strings.Cut(b[i], ":")
		if prefixA != prefixB {
			t.Errorf("line %d: key part changed: %q -> %q", i+1, prefixA, prefixB)
		}
		if _, ca, found := strings.Cut(a[i], " #"); found {
			if _, cb, _ := strings.Cut(b[i], " #"); ca != cb {
				t.Errorf("line %d: comment changed: %q -> %q", i+1, ca, cb)
			}
		}
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	goldentest.Equal(t, name, got)
}

func TestReadReleaseRejects(t *testing.T) {
	t.Parallel()
	const good = "image:\n  repository: r\n  tag: \"1.0.0\"\ncanary:\n  enabled: false\n  image:\n    tag: \"\"\n  weight: 0\n"
	tests := []struct {
		name    string
		from    string
		to      string
		wantErr string
		is      error
	}{
		{"weight as string", "weight: 0", `weight: "0"`, "canary.weight must be an integer", gitops.ErrMalformed},
		{"weight above 100", "weight: 0", "weight: 101", "between 0 and 100", gitops.ErrMalformed},
		{"weight negative", "weight: 0", "weight: -5", "between 0 and 100", gitops.ErrMalformed},
		{"weight fractional", "weight: 0", "weight: 10.5", "must be an integer", gitops.ErrMalformed},
		{"enabled as yes", "enabled: false", "enabled: yes", "canary.enabled must be a boolean", gitops.ErrMalformed},
		{"tag as number", "tag: \"\"", "tag: 1.5", "canary.image.tag must be a string", gitops.ErrMalformed},
		{"tag null", "tag: \"\"", "tag:", "canary.image.tag must be a string", gitops.ErrMalformed},
		{"unknown canary key", "  weight: 0", "  weight: 0\n  wieght: 10", `unknown key "wieght" in canary`, gitops.ErrMalformed},
		{"duplicate weight", "  weight: 0", "  weight: 0\n  weight: 50", `key "weight" appears twice`, gitops.ErrMalformed},
		{"missing weight", "  weight: 0\n", "", "canary.weight is missing", gitops.ErrMalformed},
		{"canary not a mapping", "canary:\n  enabled: false\n  image:\n    tag: \"\"\n  weight: 0\n", "canary: off\n", "canary must be a mapping", gitops.ErrMalformed},
		{"no canary block", "canary:\n  enabled: false\n  image:\n    tag: \"\"\n  weight: 0\n", "", "canary is missing", gitops.ErrMalformed},
		{"alias weight", "  weight: 0", "  weight: *w", "", nil},
		{"not a mapping", good, "- a\n- b\n", "document root is not a mapping", gitops.ErrMalformed},
		{"broken YAML", good, "image: [\n", "", gitops.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if !strings.Contains(good, tt.from) {
				t.Fatalf("fixture lacks %q", tt.from)
			}
			data := []byte(strings.Replace(good, tt.from, tt.to, 1))
			_, err := gitops.ReadRelease(data)
			if err == nil {
				t.Fatalf("accepted:\n%s", data)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want %v", err, tt.is)
			}
			if tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want it to contain %q", err, tt.wantErr)
			}
			// EditRelease must refuse the same file and return nothing.
			out, err := gitops.EditRelease(data, gitops.Release{StableRepository: "r", StableTag: "1.0.0", Canary: gitops.Canary{Enabled: true, Tag: "2.0.0", Weight: 10}})
			if err == nil || out != nil {
				t.Errorf("EditRelease accepted a malformed file: %v", err)
			}
		})
	}
}

func TestEditScalarsRefusesUnsupportedLayouts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		doc  string
		path []string
	}{
		{"anchor", "a: &x 10\nb: *x\n", []string{"a"}},
		{"explicit tag", "a: !!int 10\n", []string{"a"}},
		{"literal block", "a: |\n  10\n", []string{"a"}},
		{"folded block", "a: >\n  10\n", []string{"a"}},
		{"multi-line plain", "a: one\n  two\nb: 1\n", []string{"a"}},
		{"merge key", "base: &b {x: 1}\nc:\n  <<: *b\n  y: 2\n", []string{"c", "y"}},
		{"not a scalar", "a: {b: 1}\n", []string{"a"}},
		{"missing", "a: 1\n", []string{"b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out, err := gitops.EditScalars([]byte(tt.doc), gitops.ScalarEdit{Path: tt.path, Kind: gitops.KindInt, Value: "20"})
			if err == nil || out != nil {
				t.Fatalf("edit accepted: %q, %v", out, err)
			}
			if !errors.Is(err, gitops.ErrUnsupportedLayout) && !errors.Is(err, gitops.ErrMalformed) {
				t.Errorf("err = %v, want ErrUnsupportedLayout or ErrMalformed", err)
			}
		})
	}
}

func TestEditScalarsQuoting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, doc, value, want string
	}{
		{"plain stays plain", "tag: 1.0.0 # c\n", "1.1.0", "tag: 1.1.0 # c\n"},
		{"plain that would be a float gets quoted", "tag: 1.0.0\n", "1.10", "tag: \"1.10\"\n"},
		{"plain that would be a bool gets quoted", "tag: a\n", "true", "tag: \"true\"\n"},
		{"empty string gets quoted", "tag: a\n", "", "tag: \"\"\n"},
		{"double stays double", "tag: \"1.0.0\"\n", "2.0.0", "tag: \"2.0.0\"\n"},
		{"single stays single", "tag: '1.0.0'\n", "it's", "tag: 'it''s'\n"},
		{"double escapes", "tag: \"x\"\n", `a"b\c`, `tag: "a\"b\\c"` + "\n"},
		{"flow keeps separators", "c: {tag: a, w: 1}\n", "bb", "c: {tag: bb, w: 1}\n"},
		{"no trailing newline", "tag: a", "b", "tag: b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := []string{"tag"}
			if strings.HasPrefix(tt.doc, "c:") {
				path = []string{"c", "tag"}
			}
			out, err := gitops.EditScalars([]byte(tt.doc), gitops.ScalarEdit{Path: path, Kind: gitops.KindString, Value: tt.value})
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Errorf("got %q, want %q", out, tt.want)
			}
		})
	}
}

func FuzzEditRelease(f *testing.F) {
	for _, name := range []string{"block-comments", "flow", "single-quoted", "crlf", "unicode", "plain-needs-quotes"} {
		data, err := os.ReadFile(filepath.Join("testdata", "edit", name+".input.yaml"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, 30, "2.0.0")
	}
	f.Fuzz(func(t *testing.T, data []byte, weight int, tag string) {
		rel, err := gitops.ReadRelease(data)
		if err != nil {
			return
		}
		want := rel
		want.Canary = gitops.Canary{Enabled: true, Tag: tag, Weight: weight}
		out, err := gitops.EditRelease(data, want)
		if err != nil {
			return
		}
		got, err := gitops.ReadRelease(out)
		if err != nil {
			t.Fatalf("edit produced an unreadable file: %v\n%q", err, out)
		}
		if got != want {
			t.Fatalf("edit reads back %+v, want %+v", got, want)
		}
	})
}

func BenchmarkEditRelease(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "edit", "block-comments.input.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	rel, err := gitops.ReadRelease(data)
	if err != nil {
		b.Fatal(err)
	}
	rel.Canary = gitops.Canary{Enabled: true, Tag: "1.1.0", Weight: 10}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := gitops.EditRelease(data, rel); err != nil {
			b.Fatal(err)
		}
	}
}
