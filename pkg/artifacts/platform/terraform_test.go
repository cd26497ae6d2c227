package platform

import (
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

const terraformRoot = "../../../gitops/terraform"

// loadEnv instantiates gitops/terraform/envs/<env> with the one variable that has no default.
func loadEnv(t *testing.T, env string) *Instance {
	t.Helper()
	in, err := LoadEnv(filepath.Join(terraformRoot, "envs", env), map[string]cty.Value{
		"zone_name": cty.StringVal(env + ".come2us.example"),
	})
	if err != nil {
		t.Fatalf("load env %s: %v", env, err)
	}
	return in
}

func child(t *testing.T, in *Instance, name string) *Instance {
	t.Helper()
	c, err := in.Child(name)
	if err != nil {
		t.Fatalf("module %s: %v", name, err)
	}
	return c
}

func attr(t *testing.T, in *Instance, addr string, path ...string) cty.Value {
	t.Helper()
	v, err := in.Attr(addr, path...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func wantString(t *testing.T, what string, v cty.Value, want string) {
	t.Helper()
	if !v.IsWhollyKnown() || v.IsNull() || v.Type() != cty.String {
		t.Errorf("%s = %#v, want the known string %q", what, v, want)
		return
	}
	if got := v.AsString(); got != want {
		t.Errorf("%s = %q, want %q", what, got, want)
	}
}

func wantBool(t *testing.T, what string, v cty.Value, want bool) {
	t.Helper()
	if !v.IsWhollyKnown() || v.IsNull() || v.Type() != cty.Bool {
		t.Errorf("%s = %#v, want the known bool %v", what, v, want)
		return
	}
	if v.True() != want {
		t.Errorf("%s = %v, want %v", what, v.True(), want)
	}
}

func wantInt(t *testing.T, what string, v cty.Value, want int) {
	t.Helper()
	got, err := knownInt(v)
	if err != nil {
		t.Errorf("%s: %v", what, err)
		return
	}
	if got != want {
		t.Errorf("%s = %d, want %d", what, got, want)
	}
}

// hasKey reports whether a known map or object value has key.
func hasKey(v cty.Value, key string) bool {
	if !v.IsKnown() || v.IsNull() {
		return false
	}
	switch ty := v.Type(); {
	case ty.IsObjectType():
		return ty.HasAttribute(key)
	case ty.IsMapType():
		return v.HasIndex(cty.StringVal(key)).True()
	}
	return false
}

func count(t *testing.T, in *Instance, addr string) int {
	t.Helper()
	n, err := in.Count(addr)
	if err != nil {
		t.Fatalf("%s count: %v", addr, err)
	}
	return n
}

// terraformDirs returns every directory under gitops/terraform that holds .tf files.
func terraformDirs(t *testing.T) []string {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(terraformRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".terraform" {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".tf") && !slices.Contains(dirs, filepath.Dir(p)) {
			dirs = append(dirs, filepath.Dir(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) < 12 {
		t.Fatalf("found %d terraform directories under %s, want the 10 modules and 2 environments", len(dirs), terraformRoot)
	}
	return dirs
}

func TestTerraformFilesParseAndAreFormatted(t *testing.T) {
	for _, dir := range terraformDirs(t) {
		t.Run(strings.TrimPrefix(dir, terraformRoot+"/"), func(t *testing.T) {
			m, err := LoadModule(dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.CheckFormat(); err != nil {
				t.Error(err)
			}
			aws, ok := m.RequiredProviders["aws"]
			if !ok {
				t.Fatalf("%s does not pin the aws provider in required_providers", dir)
			}
			if aws.Source != "hashicorp/aws" || !strings.HasPrefix(aws.Version, "~> 6.") {
				t.Errorf("aws provider = %+v, want hashicorp/aws ~> 6.x", aws)
			}
			for name, r := range m.Resources {
				if !strings.HasPrefix(r.Type, "aws_") {
					t.Errorf("resource %s is not from the aws provider", name)
				}
			}
			// Untyped, unused and undocumented declarations are tflint's (terraform_typed_variables
			// and the rest of gitops/terraform/.tflint.hcl, run by .ci/platform-checks).
		})
	}
}

func TestTerraformEnvironmentsValidate(t *testing.T) {
	for _, env := range []string{"dev", "prod"} {
		t.Run(env, func(t *testing.T) {
			for _, err := range loadEnv(t, env).Validate() {
				t.Error(err)
			}
		})
	}
}

func TestTerraformNetwork(t *testing.T) {
	tests := []struct {
		env      string
		wantNATs int
	}{
		{env: "dev", wantNATs: 1},
		{env: "prod", wantNATs: 2},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			vpc := child(t, loadEnv(t, tt.env), "vpc")
			azs, err := vpc.Var("azs")
			if err != nil {
				t.Fatal(err)
			}
			if n := azs.LengthInt(); n != 2 {
				t.Errorf("VPC spans %d availability zones, want 2", n)
			}
			for _, tier := range []string{"public", "app", "data"} {
				if n := count(t, vpc, "aws_subnet."+tier); n != 2 {
					t.Errorf("%s subnets = %d, want one per AZ (2)", tier, n)
				}
			}
			if n := count(t, vpc, "aws_nat_gateway.this"); n != tt.wantNATs {
				t.Errorf("NAT gateways = %d, want %d", n, tt.wantNATs)
			}
			if n := count(t, vpc, "aws_eip.nat"); n != tt.wantNATs {
				t.Errorf("NAT elastic IPs = %d, want %d", n, tt.wantNATs)
			}
			out, err := vpc.Output("nat_gateway_count")
			if err != nil {
				t.Fatal(err)
			}
			wantInt(t, "output nat_gateway_count", out, tt.wantNATs)

			// MSK's client subnets: three distinct zones, two of them the workload zones.
			kafkaAZs := map[string]bool{}
			for i := range count(t, vpc, "aws_subnet.kafka") {
				v, err := vpc.AttrAt("aws_subnet.kafka", i, "availability_zone")
				if err != nil {
					t.Fatal(err)
				}
				kafkaAZs[v.AsString()] = true
			}
			if len(kafkaAZs) != 3 {
				t.Errorf("MSK subnets are in %d distinct zones, want 3 (one per broker)", len(kafkaAZs))
			}
			for it := azs.ElementIterator(); it.Next(); {
				_, az := it.Element()
				if !kafkaAZs[az.AsString()] {
					t.Errorf("workload zone %s has no MSK subnet", az.AsString())
				}
			}

			// Every subnet lies inside the VPC and no two overlap.
			cidr, err := vpc.Var("cidr")
			if err != nil {
				t.Fatal(err)
			}
			vpcPrefix := netip.MustParsePrefix(cidr.AsString())
			var subnets []netip.Prefix
			for _, tier := range []string{"public", "app", "data", "kafka"} {
				for i := range count(t, vpc, "aws_subnet."+tier) {
					v, err := vpc.AttrAt("aws_subnet."+tier, i, "cidr_block")
					if err != nil {
						t.Fatal(err)
					}
					p := netip.MustParsePrefix(v.AsString())
					if !vpcPrefix.Contains(p.Addr()) || p.Bits() < vpcPrefix.Bits() {
						t.Errorf("%s subnet %d %s is outside the VPC %s", tier, i, p, vpcPrefix)
					}
					for _, q := range subnets {
						if p.Overlaps(q) {
							t.Errorf("%s subnet %d %s overlaps %s", tier, i, p, q)
						}
					}
					subnets = append(subnets, p)
				}
			}
		})
	}
}

func TestTerraformMSK(t *testing.T) {
	for _, env := range []string{"dev", "prod"} {
		t.Run(env, func(t *testing.T) {
			root := loadEnv(t, env)
			msk := child(t, root, "msk")
			brokers := attr(t, msk, "aws_msk_cluster.this", "number_of_broker_nodes")
			wantInt(t, "number_of_broker_nodes", brokers, 3)
			subnets := count(t, child(t, root, "vpc"), "aws_subnet.kafka")
			if n, _ := knownInt(brokers); subnets == 0 || n%subnets != 0 {
				t.Errorf("%d brokers over %d client subnets: MSK needs a multiple", n, subnets)
			}
			wantBool(t, "client_authentication.sasl.iam", attr(t, msk, "aws_msk_cluster.this", "client_authentication", "sasl", "iam"), true)
			wantBool(t, "client_authentication.unauthenticated", attr(t, msk, "aws_msk_cluster.this", "client_authentication", "unauthenticated"), false)
			wantString(t, "encryption client_broker", attr(t, msk, "aws_msk_cluster.this", "encryption_info", "encryption_in_transit", "client_broker"), "TLS")

			props, err := ParseProperties(attr(t, msk, "aws_msk_configuration.this", "server_properties").AsString())
			if err != nil {
				t.Fatal(err)
			}
			for key, want := range map[string]string{
				"num.partitions":             "3",
				"default.replication.factor": "3",
				"min.insync.replicas":        "2",
				"log.retention.hours":        "168",
				"auto.create.topics.enable":  "false",
			} {
				if got, ok := props[key]; !ok || got != want {
					t.Errorf("server.properties %s = %q (set: %v), want %q", key, got, ok, want)
				}
			}
			version, err := msk.Var("kafka_version")
			if err != nil {
				t.Fatal(err)
			}
			kv := attr(t, msk, "aws_msk_configuration.this", "kafka_versions")
			if !kv.IsWhollyKnown() || !kv.Equals(cty.TupleVal([]cty.Value{version})).True() {
				t.Errorf("configuration kafka_versions = %#v, want [%s] like the cluster", kv, version.AsString())
			}
		})
	}
}

func TestTerraformDataStores(t *testing.T) {
	tests := []struct {
		env          string
		wantReplicas int
	}{
		{env: "dev", wantReplicas: 1},
		{env: "prod", wantReplicas: 2},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			root := loadEnv(t, tt.env)

			rds := child(t, root, "rds")
			wantBool(t, "rds multi_az", attr(t, rds, "aws_db_instance.primary", "multi_az"), true)
			wantString(t, "rds engine", attr(t, rds, "aws_db_instance.primary", "engine"), "postgres")
			wantBool(t, "rds manage_master_user_password", attr(t, rds, "aws_db_instance.primary", "manage_master_user_password"), true)
			wantBool(t, "rds storage_encrypted", attr(t, rds, "aws_db_instance.primary", "storage_encrypted"), true)
			wantBool(t, "rds publicly_accessible", attr(t, rds, "aws_db_instance.primary", "publicly_accessible"), false)
			if n := count(t, rds, "aws_db_instance.replica"); n != tt.wantReplicas {
				t.Errorf("read replicas = %d, want %d", n, tt.wantReplicas)
			}
			src, err := rds.Module.Resources["aws_db_instance.replica"].Expr("replicate_source_db")
			if err != nil {
				t.Fatal(err)
			}
			if vars := src.Variables(); len(vars) != 1 || vars[0].RootName() != "aws_db_instance" {
				t.Errorf("read replicas do not replicate the primary instance")
			}

			redis := child(t, root, "elasticache")
			clusters, err := redis.Var("clusters")
			if err != nil {
				t.Fatal(err)
			}
			for _, role := range []string{"session", "cache"} {
				if !hasKey(clusters, role) {
					t.Fatalf("no %s Redis in %#v", role, clusters)
				}
				wantInt(t, role+" redis nodes", clusters.Index(cty.StringVal(role)).GetAttr("nodes"), 2)
			}
			rg := "aws_elasticache_replication_group.this"
			wantString(t, "redis cluster_mode", attr(t, redis, rg, "cluster_mode"), "disabled")
			wantBool(t, "redis multi_az_enabled", attr(t, redis, rg, "multi_az_enabled"), true)
			wantBool(t, "redis automatic_failover_enabled", attr(t, redis, rg, "automatic_failover_enabled"), true)
			wantBool(t, "redis transit_encryption_enabled", attr(t, redis, rg, "transit_encryption_enabled"), true)
			if pg := attr(t, redis, rg, "parameter_group_name").AsString(); strings.Contains(pg, "cluster.on") {
				t.Errorf("parameter group %s turns cluster mode on", pg)
			}

			s3 := child(t, root, "s3")
			buckets, err := s3.Var("buckets")
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range []string{"assets", "loki", "tempo"} {
				if !hasKey(buckets, b) {
					t.Errorf("no %s bucket", b)
				}
			}
			wantString(t, "s3 versioning status", attr(t, s3, "aws_s3_bucket_versioning.this", "versioning_configuration", "status"), "Enabled")
			wantString(t, "s3 endpoint type", attr(t, s3, "aws_vpc_endpoint.s3", "vpc_endpoint_type"), "Gateway")
			wantString(t, "s3 endpoint service", attr(t, s3, "aws_vpc_endpoint.s3", "service_name"), "com.amazonaws.ap-northeast-2.s3")
			wantBool(t, "s3 block_public_policy", attr(t, s3, "aws_s3_bucket_public_access_block.this", "block_public_policy"), true)
		})
	}
}

func TestTerraformComputeLogsAndRegistry(t *testing.T) {
	for _, env := range []string{"dev", "prod"} {
		t.Run(env, func(t *testing.T) {
			root := loadEnv(t, env)
			cluster := "come2us-" + env

			logs := child(t, root, "logs")
			wantInt(t, "log group retention_in_days", attr(t, logs, "aws_cloudwatch_log_group.this", "retention_in_days"), logRetentionDays)
			groups, err := logs.Output("log_group_names")
			if err != nil {
				t.Fatal(err)
			}
			if !hasKey(groups, "eks_control_plane") {
				t.Fatalf("no control-plane log group in %#v", groups)
			}
			groupNames, err := logs.Local("log_groups")
			if err != nil {
				t.Fatal(err)
			}
			wantString(t, "EKS control-plane log group", groupNames.GetAttr("eks_control_plane"), "/aws/eks/"+cluster+"/cluster")
			for _, r := range logs.Module.ResourcesOfType("aws_cloudwatch_log_group") {
				wantInt(t, r.Address()+" retention", attr(t, logs, r.Address(), "retention_in_days"), logRetentionDays)
			}

			eks := child(t, root, "eks")
			wantString(t, "system node group capacity_type", attr(t, eks, "aws_eks_node_group.system", "capacity_type"), "ON_DEMAND")
			wantInt(t, "system node group min_size", attr(t, eks, "aws_eks_node_group.system", "scaling_config", "min_size"), 2)
			wantString(t, "eks cluster name", attr(t, eks, "aws_eks_cluster.this", "name"), cluster)
			wantString(t, "fluent-bit namespace", attr(t, eks, "aws_eks_pod_identity_association.node_logs", "namespace"), "observability")
			wantString(t, "fluent-bit service account", attr(t, eks, "aws_eks_pod_identity_association.node_logs", "service_account"), "fluent-bit")

			karpenter := child(t, root, "karpenter")
			role, err := karpenter.Output("node_role_name")
			if err != nil {
				t.Fatal(err)
			}
			wantString(t, "karpenter node role", role, cluster+"-karpenter-node")
			wantString(t, "karpenter access entry type", attr(t, karpenter, "aws_eks_access_entry.node", "type"), "EC2_LINUX")
			wantString(t, "karpenter service account", attr(t, karpenter, "aws_eks_pod_identity_association.controller", "service_account"), "karpenter")

			ecr := child(t, root, "ecr")
			repos, err := ecr.Var("repositories")
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for it := repos.ElementIterator(); it.Next(); {
				_, v := it.Element()
				names = append(names, v.AsString())
			}
			for _, want := range []string{"come2us/order-service", "come2us/payment-service", "come2us/product-service", "come2us/opsctl"} {
				if !slices.Contains(names, want) {
					t.Errorf("ECR repositories %v lack %s", names, want)
				}
			}
			wantBool(t, "ecr scan_on_push", attr(t, ecr, "aws_ecr_repository.this", "image_scanning_configuration", "scan_on_push"), true)
			wantString(t, "ecr tag mutability", attr(t, ecr, "aws_ecr_repository.this", "image_tag_mutability"), "IMMUTABLE")

			dns := child(t, root, "dns")
			wantString(t, "acm validation", attr(t, dns, "aws_acm_certificate.this", "validation_method"), "DNS")
		})
	}
}

func TestLoadModuleRejectsBrokenInput(t *testing.T) {
	tests := []struct {
		dir  string
		want string
	}{
		{dir: "syntax", want: "parse"},
		{dir: "duplicate", want: `duplicate variable "name"`},
		{dir: "nosource", want: "has no source"},
	}
	for _, tt := range tests {
		t.Run(tt.dir, func(t *testing.T) {
			_, err := LoadModule(filepath.Join("testdata", "terraform", tt.dir))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadModule error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := LoadModule(t.TempDir()); err == nil {
		t.Error("LoadModule accepted a directory without .tf files")
	}
}

func TestCheckFormatNamesUnformattedFiles(t *testing.T) {
	m, err := LoadModule(filepath.Join("testdata", "terraform", "unformatted"))
	if err != nil {
		t.Fatal(err)
	}
	err = m.CheckFormat()
	if !errors.Is(err, ErrNotFormatted) || !strings.Contains(err.Error(), "main.tf") {
		t.Fatalf("CheckFormat = %v, want ErrNotFormatted naming main.tf", err)
	}
}

func TestValidateReportsBrokenConfiguration(t *testing.T) {
	tests := []struct {
		name   string
		inputs map[string]cty.Value
		want   []string
	}{
		{
			name:   "valid inputs still catch the broken references",
			inputs: map[string]cty.Value{"brokers": cty.NumberIntVal(3)},
			want: []string{
				`no variable "missing"`,
				`There is no function named "lenght"`,
				"reference to undeclared resource aws_vpc.nope",
				`module declares no output "nothing"`,
			},
		},
		{
			name:   "precondition",
			inputs: map[string]cty.Value{"brokers": cty.NumberIntVal(4)},
			want:   []string{"precondition failed: brokers must be a multiple of the subnets"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := LoadEnv(filepath.Join("testdata", "terraform", "broken"), tt.inputs)
			if err != nil {
				t.Fatal(err)
			}
			var msgs []string
			for _, err := range in.Validate() {
				msgs = append(msgs, err.Error())
			}
			all := strings.Join(msgs, "\n")
			for _, w := range tt.want {
				if !strings.Contains(all, w) {
					t.Errorf("Validate errors lack %q:\n%s", w, all)
				}
			}
		})
	}
}

func TestInstantiateRejectsBadInputs(t *testing.T) {
	m, err := LoadModule(filepath.Join(terraformRoot, "modules", "vpc"))
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]cty.Value{
		"name":               cty.StringVal("x"),
		"cidr":               cty.StringVal("10.0.0.0/16"),
		"azs":                cty.TupleVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b")}),
		"kafka_extra_az":     cty.StringVal("c"),
		"single_nat_gateway": cty.True,
		"cluster_name":       cty.StringVal("x"),
	}
	with := func(k string, v cty.Value) map[string]cty.Value {
		out := map[string]cty.Value{}
		for kk, vv := range base {
			out[kk] = vv
		}
		if v == cty.NilVal {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}
	tests := []struct {
		name   string
		inputs map[string]cty.Value
		want   string
	}{
		{name: "three zones", inputs: with("azs", cty.TupleVal([]cty.Value{cty.StringVal("a"), cty.StringVal("b"), cty.StringVal("c")})), want: "exactly two availability zones"},
		{name: "missing required", inputs: with("cidr", cty.NilVal), want: `required variable "cidr" is not set`},
		{name: "unknown argument", inputs: with("colour", cty.StringVal("red")), want: `unsupported argument "colour"`},
		{name: "wrong type", inputs: with("single_nat_gateway", cty.StringVal("maybe")), want: `variable "single_nat_gateway"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Instantiate("modules/vpc", tt.inputs)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Instantiate error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := m.Instantiate("modules/vpc", base); err != nil {
		t.Fatalf("valid inputs rejected: %v", err)
	}
}

func TestCIDRSubnet(t *testing.T) {
	tests := []struct {
		prefix          string
		newbits, netnum int
		want            string
		wantErr         string
	}{
		{prefix: "10.20.0.0/16", newbits: 3, netnum: 1, want: "10.20.32.0/19"},
		{prefix: "10.20.0.0/16", newbits: 8, netnum: 160, want: "10.20.160.0/24"},
		{prefix: "10.20.5.7/16", newbits: 8, netnum: 0, want: "10.20.0.0/24"},
		{prefix: "fd00::/56", newbits: 8, netnum: 3, want: "fd00:0:0:3::/64"},
		{prefix: "10.0.0.0/30", newbits: 4, netnum: 0, wantErr: "only 32 bits"},
		{prefix: "10.0.0.0/16", newbits: 2, netnum: 4, wantErr: "does not fit"},
		{prefix: "nonsense", newbits: 2, netnum: 0, wantErr: "invalid CIDR"},
	}
	for _, tt := range tests {
		got, err := CIDRSubnet(tt.prefix, tt.newbits, tt.netnum)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("CIDRSubnet(%s,%d,%d) error = %v, want %q", tt.prefix, tt.newbits, tt.netnum, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("CIDRSubnet(%s,%d,%d) = %q, %v; want %q", tt.prefix, tt.newbits, tt.netnum, got, err, tt.want)
		}
	}
}

func TestParseProperties(t *testing.T) {
	got, err := ParseProperties("# comment\n a = 1\n\n!other\nb=two=2\n")
	if err != nil {
		t.Fatal(err)
	}
	if got["a"] != "1" || got["b"] != "two=2" || len(got) != 2 {
		t.Errorf("ParseProperties = %v", got)
	}
	for _, bad := range []string{"novalue\n", "a=1\na=2\n", "=1\n"} {
		if _, err := ParseProperties(bad); err == nil {
			t.Errorf("ParseProperties(%q) accepted malformed input", bad)
		}
	}
}

func FuzzParseProperties(f *testing.F) {
	f.Add("num.partitions=3\nmin.insync.replicas=2\n")
	f.Add("# c\n\n!x\nk = v = w\n")
	f.Fuzz(func(t *testing.T, s string) {
		props, err := ParseProperties(s)
		if err != nil {
			return
		}
		for k := range props {
			if k == "" || strings.ContainsAny(k, "\n") {
				t.Fatalf("bad key %q from %q", k, s)
			}
		}
	})
}

// cloudWatchRetentionDays are the only values CloudWatch Logs' PutRetentionPolicy accepts for
// retentionInDays (AWS API reference); any other value fails `terraform apply`, not `plan`.
var cloudWatchRetentionDays = []int{1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}

// logRetentionDays is the infrastructure log groups' retention: the design (section 12) asks for
// 15 days, which CloudWatch does not accept; 30 is the nearest accepted value that keeps them at
// least that long.
const logRetentionDays = 30

// TestLogRetentionIsOneCloudWatchAccepts keeps the log groups' retention, and every value the
// logs module's own validation admits, inside what CloudWatch accepts, so a wrong retention fails
// here instead of halfway through an apply.
func TestLogRetentionIsOneCloudWatchAccepts(t *testing.T) {
	if !slices.Contains(cloudWatchRetentionDays, logRetentionDays) || logRetentionDays < 15 {
		t.Fatalf("retention %d: must be a CloudWatch value of at least the design's 15 days", logRetentionDays)
	}
	src, err := os.ReadFile(filepath.Join(terraformRoot, "modules", "logs", "variables.tf"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`contains\(\[([0-9, ]+)\],\s*var\.retention_in_days\)`).FindSubmatch(src)
	if m == nil {
		t.Fatal("modules/logs/variables.tf: no validation of retention_in_days against a list")
	}
	for _, f := range strings.Split(string(m[1]), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			t.Fatalf("validation list entry %q: %v", f, err)
		}
		if !slices.Contains(cloudWatchRetentionDays, n) {
			t.Errorf("modules/logs admits retention_in_days = %d, which CloudWatch Logs rejects", n)
		}
	}
}
