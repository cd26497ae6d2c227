package cmdutil

import (
	"errors"
	"fmt"

	"github.com/come2us/opsctl/pkg/iostreams"
)

// CheckWritable refuses when opsctl runs read-only. Mutating commands call it before anything
// else, dry runs included only where a dry run would contact a write path.
func (f *Factory) CheckWritable() error {
	f.load() // a read-only context counts too
	if f.Readonly {
		return ErrReadonly
	}
	return nil
}

// Confirm asks the user to confirm action unless yes is set. Without a terminal to ask on it
// refuses with ErrConfirmationNeeded; a "no" answer returns an error saying nothing changed.
func (f *Factory) Confirm(action string, yes bool) error {
	if yes {
		return nil
	}
	if !f.IOStreams.CanPrompt() {
		return ErrConfirmationNeeded
	}
	if err := f.IOStreams.Confirm(action); err != nil {
		if errors.Is(err, iostreams.ErrDeclined) {
			return fmt.Errorf("aborted at the confirmation prompt; nothing was changed")
		}
		return err
	}
	return nil
}
