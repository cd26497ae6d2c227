package translations_test

import (
	"testing"

	"github.com/come2us/opsctl/pkg/translations"
	// A kubectl command package whose variables call i18n.T as it is initialised, as the ones
	// Argo CD's client links do.
	_ "k8s.io/kubectl/pkg/cmd/apiresources"
	"k8s.io/kubectl/pkg/util/i18n"
)

func TestKubectlCataloguesAreNotLoaded(t *testing.T) {
	if err := translations.InstallErr(); err != nil {
		t.Fatalf("kubectl loaded its catalogue before this package was initialised: %v", err)
	}
	if !translations.Asked() {
		t.Fatal("kubectl's command packages did not ask for a catalogue; nothing was skipped")
	}
	const text = "Print the supported API resources on the server"
	if got := i18n.T(text); got != text {
		t.Errorf("i18n.T = %q, want the English text unchanged", got)
	}
}
