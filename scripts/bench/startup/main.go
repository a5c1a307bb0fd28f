// Command startup measures how fast a zimage binary comes up: the time from
// exec to the first 200 on /healthz, on a fresh data folder (first start:
// master key, keyring and database are created) and on an existing one, and
// the resident memory once it is idle.
//
//	go run ./scripts/bench/startup -bin dist/zimage -n 20
package main

import (
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("bin", "dist/zimage", "zimage binary to measure")
	n := flag.Int("n", 20, "starts per case")
	flag.Parse()
	abs, err := filepath.Abs(*bin)
	if err != nil {
		fail(err)
	}
	if fi, err := os.Stat(abs); err == nil {
		fmt.Printf("binary %s: %.1f MB\n", *bin, float64(fi.Size())/1e6)
	} else {
		fail(fmt.Errorf("%s: %v (build it with scripts/build-static.sh)", *bin, err))
	}
	var fresh, warm []time.Duration
	var rss []int
	keep, err := os.MkdirTemp("", "zimage-bench-warm-")
	if err != nil {
		fail(err)
	}
	defer os.RemoveAll(keep)
	for i := 0; i < *n; i++ {
		dir, err := os.MkdirTemp("", "zimage-bench-fresh-")
		if err != nil {
			fail(err)
		}
		d, _ := startOnce(abs, dir, false)
		fresh = append(fresh, d)
		os.RemoveAll(dir)
		d, r := startOnce(abs, keep, i == *n-1)
		warm = append(warm, d)
		if r > 0 {
			rss = append(rss, r)
		}
	}
	report("cold start, fresh data folder", fresh)
	report("cold start, existing data", warm)
	for _, r := range rss {
		fmt.Printf("idle RSS 2 s after start: %.1f MB\n", float64(r)/1024)
	}
}

func startOnce(bin, dataDir string, measureRSS bool) (time.Duration, int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "ZIMAGE_SERVER_LISTEN="+addr, "ZIMAGE_SERVER_DATA_DIR="+filepath.Join(dataDir, "data"), "ZIMAGE_SERVER_LOG_LEVEL=warn")
	client := &http.Client{Timeout: 200 * time.Millisecond}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fail(err)
	}
	var took time.Duration
	for {
		resp, err := client.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				took = time.Since(start)
				break
			}
		}
		if time.Since(start) > 10*time.Second {
			cmd.Process.Kill()
			fail(fmt.Errorf("no 200 on /healthz within 10 s"))
		}
		time.Sleep(500 * time.Microsecond)
	}
	rss := 0
	if measureRSS {
		time.Sleep(2 * time.Second)
		rss = vmRSS(cmd.Process.Pid)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	return took, rss
}

func vmRSS(pid int) int {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.Atoi(f[1])
			return kb
		}
	}
	return 0
}

func report(name string, ds []time.Duration) {
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	p := func(q float64) time.Duration { return ds[int(q*float64(len(ds)-1))] }
	fmt.Printf("%s: n=%d min %v p50 %v p90 %v max %v\n", name, len(ds), ds[0].Round(100*time.Microsecond), p(.5).Round(100*time.Microsecond), p(.9).Round(100*time.Microsecond), ds[len(ds)-1].Round(100*time.Microsecond))
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "startup:", err)
	os.Exit(1)
}
