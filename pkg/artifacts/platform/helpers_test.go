package platform

import (
	"os"

	sigsyaml "sigs.k8s.io/yaml"
)

func writeFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}

func yamlToJSON(t interface{ Fatal(...any) }, doc []byte) []byte {
	out, err := sigsyaml.YAMLToJSON(doc)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
