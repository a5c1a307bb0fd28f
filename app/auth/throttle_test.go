package auth

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func testThrottle() *Throttle {
	return NewThrottle(ThrottleConfig{FreeFailures: 5, BaseDelay: time.Second, MaxDelay: 15 * time.Minute, Window: 15 * time.Minute, MaxEntries: 1000})
}

// failAt records a failure at now after checking that it was allowed.
func failAt(t *testing.T, th *Throttle, key string, now time.Time) bool {
	t.Helper()
	if wait, ok := th.Check(key, now); !ok {
		t.Fatalf("attempt at %v refused (wait %v), want allowed", now.Sub(t0), wait)
	}
	return th.Fail(key, now)
}

func TestThrottleGrowth(t *testing.T) {
	th := testThrottle()
	now := t0
	for i := 1; i <= 4; i++ {
		if failAt(t, th, "k", now) {
			t.Fatalf("failure %d started a lockout, want none before 5", i)
		}
		now = now.Add(time.Second)
	}
	if !failAt(t, th, "k", now) {
		t.Fatal("failure 5 did not report the lockout")
	}
	wantDelays := []time.Duration{1, 2, 4, 8, 16, 32, 64, 128, 256, 512} // seconds
	for i, want := range wantDelays {
		want *= time.Second
		wait, ok := th.Check("k", now)
		if ok || wait != want {
			t.Fatalf("after failure %d: Check = %v, %v; want %v, false", 5+i, wait, ok, want)
		}
		if wait, ok := th.Check("k", now.Add(want-time.Millisecond)); ok || wait != time.Millisecond {
			t.Fatalf("just before the delay ends: Check = %v, %v; want 1ms, false", wait, ok)
		}
		now = now.Add(want)
		if failAt(t, th, "k", now) {
			t.Fatalf("failure %d reported a new lockout; the signal must come once", 6+i)
		}
	}
	// 2^10 s is over 15 minutes: capped from here on.
	for range 100 {
		wait, ok := th.Check("k", now)
		if ok || wait != 15*time.Minute {
			t.Fatalf("Check = %v, %v; want the 15m cap", wait, ok)
		}
		now = now.Add(wait)
		th.Fail("k", now)
	}
}

func TestThrottleDelayNeverOverflows(t *testing.T) {
	th := NewThrottle(ThrottleConfig{FreeFailures: 1, BaseDelay: time.Hour, MaxDelay: 24 * time.Hour})
	for i := range 200 {
		if d := th.delay(i); d <= 0 || d > 24*time.Hour {
			t.Fatalf("delay(%d) = %v, want within (0, 24h]", i, d)
		}
	}
	if d := th.delay(100); d != 24*time.Hour {
		t.Errorf("delay(100) = %v, want the 24h cap", d)
	}
	big := NewThrottle(ThrottleConfig{BaseDelay: time.Hour, MaxDelay: time.Minute})
	if d := big.delay(0); d != time.Minute {
		t.Errorf("base above cap: delay(0) = %v, want the cap", d)
	}
}

func TestThrottleSucceedResets(t *testing.T) {
	th := testThrottle()
	for range 5 {
		th.Fail("k", t0)
	}
	if _, ok := th.Check("k", t0); ok {
		t.Fatal("locked key allowed")
	}
	th.Succeed("k")
	if wait, ok := th.Check("k", t0); !ok {
		t.Fatalf("after Succeed: wait %v, want allowed", wait)
	}
	for i := 1; i <= 4; i++ {
		if th.Fail("k", t0) {
			t.Fatalf("after Succeed, failure %d locked out; the count must start over", i)
		}
	}
	if !th.Fail("k", t0) {
		t.Error("after Succeed, failure 5 did not lock out")
	}
}

func TestThrottleWindow(t *testing.T) {
	tests := []struct {
		name       string
		gap        time.Duration // between the 4th and 5th failure
		wantLocked bool
	}{
		{"within the window", 14 * time.Minute, true},
		{"window passed", 15 * time.Minute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := testThrottle()
			for range 4 {
				th.Fail("k", t0)
			}
			if got := th.Fail("k", t0.Add(tt.gap)); got != tt.wantLocked {
				t.Errorf("5th failure after %v: lockedOut = %v, want %v", tt.gap, got, tt.wantLocked)
			}
		})
	}

	t.Run("waiting out a lockout does not reset it", func(t *testing.T) {
		th := testThrottle()
		now := t0
		for range 30 {
			if wait, ok := th.Check("k", now); !ok {
				now = now.Add(wait)
			}
			th.Fail("k", now)
		}
		wait, _ := th.Check("k", now)
		now = now.Add(wait)
		th.Fail("k", now)
		if wait, ok := th.Check("k", now); ok || wait != 15*time.Minute {
			t.Errorf("Check = %v, %v; want still 15m", wait, ok)
		}
		// Only a quiet Window after the delay ends forgets the key.
		if _, ok := th.Check("k", now.Add(30*time.Minute)); !ok {
			t.Fatal("refused after the delay and the window")
		}
		if th.Fail("k", now.Add(30*time.Minute)) {
			t.Error("first failure after being forgotten started a lockout")
		}
	})
}

func TestThrottleLockoutSignalAgain(t *testing.T) {
	th := testThrottle()
	signals := 0
	now := t0
	for round := range 2 {
		for range 5 {
			if th.Fail("k", now) {
				signals++
			}
		}
		if signals != round+1 {
			t.Fatalf("round %d: %d lockout signals, want %d", round, signals, round+1)
		}
		now = now.Add(time.Hour) // forgotten
	}
}

func TestThrottleKeysIndependent(t *testing.T) {
	th := testThrottle()
	for range 5 {
		th.Fail(AccountKey("alice"), t0)
	}
	if _, ok := th.Check(AccountKey("alice"), t0); ok {
		t.Error("alice not locked")
	}
	if _, ok := th.Check(AccountKey("bob"), t0); !ok {
		t.Error("bob locked by alice's failures")
	}
}

func TestThrottleEviction(t *testing.T) {
	th := NewThrottle(ThrottleConfig{FreeFailures: 5, BaseDelay: time.Second, MaxDelay: time.Hour, Window: time.Hour, MaxEntries: 10})
	for range 12 {
		th.Fail("attacker", t0) // locked for a long time
	}
	for i := range 500 {
		th.Fail(fmt.Sprintf("spray-%d", i), t0.Add(time.Duration(i)*time.Millisecond))
		if n := th.Len(); n > 10 {
			t.Fatalf("after %d keys: Len = %d, want at most MaxEntries 10", i+1, n)
		}
	}
	if _, ok := th.Check("attacker", t0.Add(time.Second)); ok {
		t.Error("a flood of new keys evicted the locked-out key")
	}
}

func TestThrottlePrune(t *testing.T) {
	th := testThrottle()
	for i := range 50 {
		th.Fail(fmt.Sprintf("k%d", i), t0)
	}
	for range 5 {
		th.Fail("locked", t0)
	}
	if n := th.Prune(t0.Add(14 * time.Minute)); n != 0 {
		t.Errorf("Prune inside the window removed %d, want 0", n)
	}
	if n := th.Prune(t0.Add(15 * time.Minute)); n != 50 {
		t.Errorf("Prune after the window removed %d, want the 50 unlocked keys", n)
	}
	if n := th.Len(); n != 1 {
		t.Errorf("Len = %d, want 1 (the locked key outlives the window by its delay)", n)
	}
	// Fail prunes by itself once a minute has passed since the last sweep.
	th.Fail("new", t0.Add(time.Hour))
	if n := th.Len(); n != 1 {
		t.Errorf("after a later Fail, Len = %d, want 1 (stale keys swept)", n)
	}
}

func TestThrottleConcurrent(t *testing.T) {
	th := testThrottle()
	var wg sync.WaitGroup
	var mu sync.Mutex
	signals := 0
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				key := fmt.Sprintf("k%d", i%10)
				th.Check(key, t0)
				if th.Fail(key, t0) {
					mu.Lock()
					signals++
					mu.Unlock()
				}
				if g == 0 && i%50 == 0 {
					th.Succeed(key)
				}
			}
		}()
	}
	wg.Wait()
	if signals < 10 {
		t.Errorf("%d lockout signals for 10 keys, want at least one each", signals)
	}
}

func TestNewThrottleDefaults(t *testing.T) {
	th := NewThrottle(ThrottleConfig{})
	if th.cfg != DefaultAccountThrottle {
		t.Errorf("zero config = %+v, want DefaultAccountThrottle %+v", th.cfg, DefaultAccountThrottle)
	}
}

func TestIPKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.7", "ip:192.0.2.7"},
		{"::ffff:192.0.2.7", "ip:192.0.2.7"},
		{"2001:db8:1:2:aaaa::1", "ip:2001:db8:1:2::/64"},
		{"2001:db8:1:2:ffff:ffff:ffff:ffff", "ip:2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "ip:2001:db8:1:3::/64"},
		{"fe80::1%eth0", "ip:fe80::/64"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := IPKey(netip.MustParseAddr(tt.in)); got != tt.want {
				t.Errorf("IPKey(%s) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
