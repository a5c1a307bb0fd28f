package vault

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// population seals one value for each of n users and returns them by user.
func population(tb testing.TB, v *Vault, n int) map[string][]byte {
	tb.Helper()
	sealed := make(map[string][]byte, n)
	for i := range n {
		u := fmt.Sprintf("user-%04d", i)
		mustUser(tb, v, u)
		sealed[u] = mustSeal(tb, v, u, "p", []byte(u))
	}
	return sealed
}

// checkPopulation opens every value with a fresh vault on dir.
func checkPopulation(t *testing.T, dir string, sealed map[string][]byte) *Vault {
	t.Helper()
	v := mustOpen(t, dir)
	for u, s := range sealed {
		got, err := v.Open(u, []byte("p"), s)
		if err != nil || string(got) != u {
			t.Fatalf("Open(%s) = %q, %v", u, got, err)
		}
	}
	return v
}

func TestRotateMasterFile(t *testing.T) {
	dir := t.TempDir()
	v := mustOpen(t, dir)
	sealed := population(t, v, 50)
	index := v.BlindIndex("email", "ada@example.org")
	oldKey, _ := os.ReadFile(filepath.Join(dir, MasterKeyFile))

	if err := v.RotateMasterFile(); err != nil {
		t.Fatal(err)
	}
	// The running vault keeps working, for cached and uncached users.
	v.cache.clear()
	if got, err := v.Open("user-0001", []byte("p"), sealed["user-0001"]); err != nil || string(got) != "user-0001" {
		t.Fatalf("Open after rotation: %q, %v", got, err)
	}
	mustUser(t, v, "new-user")
	newSealed := mustSeal(t, v, "new-user", "p", []byte("new-user"))
	v.Close()

	newKey, _ := os.ReadFile(filepath.Join(dir, MasterKeyFile))
	if bytes.Equal(oldKey, newKey) || len(newKey) != KeySize {
		t.Fatal("master.key was not replaced with a new key")
	}
	if info, _ := os.Stat(filepath.Join(dir, MasterKeyFile)); info.Mode().Perm() != 0o600 {
		t.Errorf("new master.key mode %#o, want 0600", info.Mode().Perm())
	}
	if _, err := os.Stat(filepath.Join(dir, masterKeyNewFile)); !errors.Is(err, os.ErrNotExist) {
		t.Error("master.key.new left behind after a successful rotation")
	}
	sealed["new-user"] = newSealed
	v2 := checkPopulation(t, dir, sealed)
	if !bytes.Equal(v2.BlindIndex("email", "ada@example.org"), index) {
		t.Error("blind index changed with the master key")
	}
	v2.Close()

	// The old key no longer opens the keyring.
	os.WriteFile(filepath.Join(dir, MasterKeyFile), oldKey, 0o600)
	if v3, err := Open(dir, ""); err == nil {
		v3.Close()
		t.Fatal("the old master key still opens the keyring")
	}
}

// TestLeftoverMasterKeyNew sets up by hand each state a crashed rotation can
// leave, and checks Open picks the key the keyring uses and tidies up.
func TestLeftoverMasterKeyNew(t *testing.T) {
	tests := []struct {
		name string
		// committed: the keyring was re-wrapped with the new key.
		committed     bool
		removeOldFile bool
	}{
		{"crash before the transaction committed", false, false},
		{"crash after commit, before rename", true, false},
		{"crash after commit, master.key gone", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			v := mustOpen(t, dir)
			sealed := population(t, v, 5)
			index := v.BlindIndex("email", "x")
			keyPath, newPath := filepath.Join(dir, MasterKeyFile), filepath.Join(dir, masterKeyNewFile)
			oldKey, _ := os.ReadFile(keyPath)
			newKey := randomBytes(t, KeySize)
			if err := writeKeyFileAtomic(newPath, newKey); err != nil {
				t.Fatal(err)
			}
			if tt.committed {
				if err := v.Rotate(newKey); err != nil {
					t.Fatal(err)
				}
			}
			v.Close()
			if tt.removeOldFile {
				os.Remove(keyPath)
			}

			v2 := checkPopulation(t, dir, sealed)
			if !bytes.Equal(v2.BlindIndex("email", "x"), index) {
				t.Error("blind index changed")
			}
			got, _ := os.ReadFile(keyPath)
			want := oldKey
			if tt.committed {
				want = newKey
			}
			if !bytes.Equal(got, want) {
				t.Error("master.key does not hold the key the keyring uses")
			}
			if _, err := os.Stat(newPath); !errors.Is(err, os.ErrNotExist) {
				t.Error("master.key.new still exists after Open")
			}
		})
	}
}

// TestRotateKilled kills a real rotation with SIGKILL at two points and
// checks the keyring then opens, with every key, from whichever key file
// matches.
func TestRotateKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	tests := []struct {
		stage      string
		wantNewKey bool
	}{
		{"inside-transaction", false},
		{"after-commit", true},
	}
	for _, tt := range tests {
		t.Run(tt.stage, func(t *testing.T) {
			dir := t.TempDir()
			v := mustOpen(t, dir)
			sealed := population(t, v, 300)
			index := v.BlindIndex("email", "x")
			v.Close()
			oldKey, _ := os.ReadFile(filepath.Join(dir, MasterKeyFile))

			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v")
			cmd.Env = append(os.Environ(), "ZIMAGE_VAULT_HELPER=1", "ZIMAGE_VAULT_DIR="+dir, "ZIMAGE_VAULT_STAGE="+tt.stage)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			ready := make(chan struct{})
			var output strings.Builder
			var wg sync.WaitGroup
			wg.Go(func() {
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					output.WriteString(sc.Text() + "\n")
					if sc.Text() == "READY" {
						close(ready)
					}
				}
			})
			select {
			case <-ready:
			case <-time.After(60 * time.Second):
				cmd.Process.Kill()
				cmd.Wait()
				wg.Wait()
				t.Fatalf("the helper never reached %s:\n%s%s", tt.stage, output.String(), stderr.String())
			}
			if err := cmd.Process.Kill(); err != nil { // SIGKILL: no deferred code runs
				t.Fatal(err)
			}
			cmd.Wait()
			wg.Wait()
			if _, err := os.Stat(filepath.Join(dir, masterKeyNewFile)); err != nil {
				t.Fatalf("master.key.new should exist at the kill point: %v", err)
			}

			v2 := checkPopulation(t, dir, sealed)
			if !bytes.Equal(v2.BlindIndex("email", "x"), index) {
				t.Error("blind index changed")
			}
			key, _ := os.ReadFile(filepath.Join(dir, MasterKeyFile))
			if usesNew := !bytes.Equal(key, oldKey); usesNew != tt.wantNewKey {
				t.Errorf("master.key is the new key = %v, want %v", usesNew, tt.wantNewKey)
			}
			if _, err := os.Stat(filepath.Join(dir, masterKeyNewFile)); !errors.Is(err, os.ErrNotExist) {
				t.Error("master.key.new still exists after Open")
			}
			// A rotation after the recovery works as usual.
			if err := v2.RotateMasterFile(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestHelperProcess is the child of TestRotateKilled: it rotates and stops
// at the requested point, says READY, and waits to be killed.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("ZIMAGE_VAULT_HELPER") != "1" {
		t.Skip("only runs as TestRotateKilled's child")
	}
	v, err := Open(os.Getenv("ZIMAGE_VAULT_DIR"), "")
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	park := func() {
		fmt.Println("READY")
		time.Sleep(5 * time.Minute)
		os.Exit(3) // never reached unless the parent forgot to kill us
	}
	switch os.Getenv("ZIMAGE_VAULT_STAGE") {
	case "inside-transaction":
		testHookRotateRow = func(done int) {
			if done == 150 { // half the keys re-wrapped, nothing committed
				park()
			}
		}
	case "after-commit":
		testHookAfterCommit = park
	}
	err = v.RotateMasterFile()
	fmt.Println("rotation finished without being killed:", err)
	os.Exit(4)
}

// TestConcurrentUse runs seals, opens, new users, a shred and a rotation
// at once; go test -race makes it a check of the locking.
func TestConcurrentUse(t *testing.T) {
	dir := t.TempDir()
	v := mustOpen(t, dir, WithCacheSize(8))
	sealed := population(t, v, 20)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for g := range 4 {
		wg.Go(func() {
			for i := range 100 {
				u := fmt.Sprintf("user-%04d", (g*7+i)%20)
				if got, err := v.Open(u, []byte("p"), sealed[u]); err != nil || string(got) != u {
					errs <- fmt.Errorf("Open(%s) = %q, %v", u, got, err)
					return
				}
				if _, err := v.Seal(u, []byte("q"), []byte("x")); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Go(func() {
		for i := range 20 {
			if err := v.EnsureUserKey(fmt.Sprintf("late-%d", i)); err != nil {
				errs <- err
			}
		}
	})
	wg.Go(func() {
		if err := v.RotateMasterFile(); err != nil {
			errs <- err
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	v.Close()
	v2 := checkPopulation(t, dir, sealed)
	for i := range 20 {
		if !v2.HasKey(fmt.Sprintf("late-%d", i)) {
			t.Errorf("late-%d lost its key", i)
		}
		if _, err := v2.Seal(fmt.Sprintf("late-%d", i), nil, []byte("x")); err != nil {
			t.Errorf("late-%d key does not unwrap after the rotation: %v", i, err)
		}
	}
}
