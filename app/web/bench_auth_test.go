package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"zimage/app/auth"
)

// BenchmarkMeBearer measures authenticated request throughput for a
// trivial API route: GET /api/v1/me with an API key, over real loopback
// HTTP, with parallel clients. Each request hashes the key, looks it up with
// its owner and opens the sealed email.
//
//	go test ./app/web -run '^$' -bench MeBearer -cpu 2 -benchtime 5s
func BenchmarkMeBearer(b *testing.B) {
	env := newAuthEnv(b, authOptionsForTest(), Options{})
	c := env.signup(b, "alice")
	key, _ := c.apiKey(b, "read")
	srv := httptest.NewServer(env.s.Handler())
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	b.SetParallelism(16) // 16×GOMAXPROCS clients, like wrk -c32 on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest("GET", srv.URL+"/api/v1/me", nil)
			req.Header.Set("Authorization", "Bearer "+key.bearer)
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 200 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// BenchmarkLogin measures a whole login through the router with the real
// argon2id parameters (auth.DefaultParams): the cost a person and an
// attacker pay per attempt.
//
//	go test ./app/web -run '^$' -bench Login -cpu 2
func BenchmarkLogin(b *testing.B) {
	opts := authOptionsForTest()
	opts.Hasher = auth.NewHasher(auth.DefaultParams, auth.DefaultMaxConcurrentHashes)
	opts.MaxLoginFailures = 1 << 30
	env := newAuthEnv(b, opts, Options{})
	env.signup(b, "alice")
	body := `{"login":"alice","password":"` + testPassword + `"}`
	for b.Loop() {
		req := httptest.NewRequest("POST", "/api/v1/auth/login", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.RemoteAddr = "192.0.2.1:1"
		rec := httptest.NewRecorder()
		env.s.Handler().ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatalf("login: %d %s", rec.Code, rec.Body)
		}
	}
}
