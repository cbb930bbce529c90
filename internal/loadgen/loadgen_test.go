package loadgen

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// run loads url until n requests were made and returns the report.
func run(t *testing.T, url string, n int, timeout time.Duration) Report {
	t.Helper()
	l, err := Start(context.Background(), Options{URL: url, Workers: 2, Interval: time.Millisecond, Timeout: timeout, MaxRequests: n})
	if err != nil {
		t.Fatal(err)
	}
	l.wg.Wait() // the bound ends it
	return l.Stop()
}

func TestKinds(t *testing.T) {
	var version atomic.Value
	version.Store("v1")
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, version.Load())
	}))
	defer ok.Close()
	unavailable := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "draining", http.StatusServiceUnavailable)
	}))
	defer unavailable.Close()
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(time.Second):
		}
	}))
	defer slow.Close()
	cut := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, _ := w.(http.Hijacker).Hijack()
		c.(*net.TCPConn).SetLinger(0)
		c.Close()
	}))
	defer cut.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String()
	l.Close()

	for _, tt := range []struct {
		name, url, kind string
	}{
		{"503", unavailable.URL, Status},
		{"slow", slow.URL, Timeout},
		{"cut", cut.URL, Reset},
		{"refused", closed, Refused},
	} {
		t.Run(tt.name, func(t *testing.T) {
			rep := run(t, tt.url, 6, 50*time.Millisecond)
			if rep.Requests != 6 || rep.Failed != 6 || rep.ByKind[tt.kind] != 6 || len(rep.Latencies) != 0 {
				t.Fatalf("report %s, by kind %v, want 6 requests, 6 failed %s", rep, rep.ByKind, tt.kind)
			}
			if len(rep.Examples) != 6 || rep.Examples[0].Kind != tt.kind || rep.Examples[0].What == "" {
				t.Errorf("examples %+v", rep.Examples)
			}
		})
	}

	t.Run("ok, then a new version", func(t *testing.T) {
		l, err := Start(context.Background(), Options{URL: ok.URL, Workers: 2, Interval: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, l, "v1")
		switched := time.Now()
		version.Store("v2")
		waitFor(t, l, "v2")
		rep := l.Stop()
		if rep.Failed != 0 || rep.Requests < 2 || len(rep.Latencies) != rep.Requests || rep.Bodies["v1"]+rep.Bodies["v2"] != rep.Requests {
			t.Fatalf("report %s", rep)
		}
		if first := rep.First["v2"]; first.Before(switched) || !rep.First["v1"].Before(first) {
			t.Errorf("first seen v1 %v, v2 %v, switched at %v", rep.First["v1"], first, switched)
		}
		if p50, p99 := rep.Percentile(0.5), rep.Percentile(0.99); p50 <= 0 || p99 < p50 || rep.Percentile(1) < p99 {
			t.Errorf("percentiles p50 %v p99 %v max %v", p50, p99, rep.Percentile(1))
		}
	})
}

// waitFor waits until the load has seen body.
func waitFor(t *testing.T, l *Load, body string) {
	t.Helper()
	for range 1000 {
		l.mu.Lock()
		_, ok := l.rep.First[body]
		l.mu.Unlock()
		if ok {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the load never saw %q", body)
}

func TestBounds(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	if rep := run(t, srv.URL, 25, time.Second); rep.Requests != 25 {
		t.Errorf("MaxRequests 25 made %d requests", rep.Requests)
	}
	l, err := Start(context.Background(), Options{URL: srv.URL, MaxDuration: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	l.wg.Wait() // MaxDuration ends it without Stop
	l.Stop()
	if _, err := Start(context.Background(), Options{URL: "localhost:8080"}); err == nil {
		t.Error("a URL without http:// was taken")
	}
}
