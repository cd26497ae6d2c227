// Package translations keeps kubectl's message catalogues from loading as opsctl starts.
//
// Argo CD's client links kubectl's command packages (through gitops-engine). Their package
// variables call kubectl's i18n.T, and its first call zips the catalogue of the user's locale
// and parses it with regular expressions: about a sixth of the time opsctl took to start, on
// every command. opsctl never shows kubectl's help texts, so it never needs the catalogue, and
// kubectl's strings stay in English.
//
// Go initialises packages in import-path order, each as soon as everything it imports is: this
// package imports only kubectl's i18n, so its init runs before any package that imports more
// of kubectl. Import it for its effect from each package that links Argo CD.
package translations

import "k8s.io/kubectl/pkg/util/i18n"

var (
	// installErr is i18n.SetLoadTranslationsFunc's answer: an error when a catalogue was
	// already loaded, i.e. this package was initialised too late.
	installErr error
	// asked records that kubectl asked for a catalogue and got none.
	asked bool
)

func init() {
	installErr = i18n.SetLoadTranslationsFunc(func() error {
		asked = true
		return nil
	})
}
