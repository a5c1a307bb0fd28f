package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"zimage/app"
)

// lockDataDir takes an exclusive lock on the data folder. serve holds it for
// its lifetime; commands that must not run beside a server (keys rotate,
// restore) take it too, so they refuse instead of corrupting live state.
func lockDataDir(dir, what string) (release func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, "zimage.lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, &app.Error{Code: app.ECONFLICT, Message: fmt.Sprintf("another zimage process is using %s: %s", dir, what)}
	}
	return func() { syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}
