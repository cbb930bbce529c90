package balancer_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/baepo/baepo/agent/balancer"
	"github.com/baepo/baepo/internal/fixture"
)

// backendServer is one server behind HAProxy: it answers /health with
// health's status, and holds each request to /<name>/slow until release
// is closed, telling entered when one arrives.
type backendServer struct {
	*httptest.Server
	health  atomic.Int32
	entered chan struct{}
	release chan struct{}
}

func newBackendServer(t *testing.T) *backendServer {
	s := &backendServer{entered: make(chan struct{}, 8), release: make(chan struct{})}
	s.health.Store(http.StatusOK)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/health":
			w.WriteHeader(int(s.health.Load()))
		case strings.HasSuffix(r.URL.Path, "/slow"):
			s.entered <- struct{}{}
			<-s.release
			fmt.Fprintln(w, "slow done")
		default:
			fmt.Fprintln(w, "ok")
		}
	}))
	t.Cleanup(func() {
		select {
		case <-s.release:
		default:
			close(s.release)
		}
		s.Close()
	})
	return s
}

// lb is a real HAProxy with backend app of two servers, web1 and web2,
// both checked every 100ms.
type lb struct {
	proxy      *fixture.HAProxy
	web1, web2 *backendServer
}

func newLB(t *testing.T) *lb {
	t.Helper()
	if err := fixture.LookHAProxy(); err != nil {
		t.Fatal(err)
	}
	dir, err := os.MkdirTemp("", "lb") // short: a socket's path has at most 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	l := &lb{web1: newBackendServer(t), web2: newBackendServer(t)}
	addr := func(s *backendServer) string { return strings.TrimPrefix(s.URL, "http://") }
	backend := fmt.Sprintf(`backend app
    option httpchk GET /health
    use-server web1 if { path_beg /web1/ }
    use-server web2 if { path_beg /web2/ }
    server web1 %s check inter 100ms rise 1 fall 1
    server web2 %s check inter 100ms rise 1 fall 1
`, addr(l.web1), addr(l.web2))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	l.proxy, err = fixture.StartHAProxy(ctx, dir, 0, backend)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.proxy.Stop()
		if t.Failed() {
			t.Logf("haproxy log:\n%s", l.proxy.Log())
		}
	})
	for _, s := range []string{"web1", "web2"} {
		l.waitStatus(t, s, "UP")
	}
	return l
}

func (l *lb) server(name string) *balancer.HAProxy {
	return &balancer.HAProxy{Socket: l.proxy.Socket, Backend: "app", Server: name}
}

// waitStatus waits until HAProxy says status for server name.
func (l *lb) waitStatus(t *testing.T, name, status string) balancer.ServerState {
	t.Helper()
	var st balancer.ServerState
	var err error
	for range 200 {
		st, err = l.server(name).State(context.Background())
		if err == nil && st.Status == status {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: status %q (%v), want %s", name, st.Status, err, status)
	return st
}

// slowRequest sends a request that web1 holds until its release is
// closed, and returns once web1 has it; the answer's status comes on the
// channel.
func (l *lb) slowRequest(t *testing.T) <-chan string {
	t.Helper()
	got := make(chan string, 1)
	go func() {
		status, body, err := fixture.Get(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/web1/slow", l.proxy.Port))
		got <- fmt.Sprint(status, " ", strings.TrimSpace(body), " ", err)
	}()
	select {
	case <-l.web1.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow request did not reach web1")
	}
	return got
}

func TestDrainWaitsForRequestsInFlight(t *testing.T) {
	l := newLB(t)
	answer := l.slowRequest(t)
	type result struct {
		res balancer.Result
		err error
	}
	drained := make(chan result, 1)
	go func() {
		res, err := l.server("web1").Drain(context.Background(), time.Minute)
		drained <- result{res, err}
	}()
	st := l.waitStatus(t, "web1", "DRAIN")
	if st.Sessions != 1 {
		t.Fatalf("web1 has %d sessions while a request is held, want 1", st.Sessions)
	}
	select {
	case r := <-drained:
		t.Fatalf("drain returned with a request in flight: %+v %v", r.res, r.err)
	default:
	}
	close(l.web1.release)
	r := <-drained
	if r.err != nil || !strings.Contains(r.res.Message, "drained haproxy app/web1: no request in flight") || r.res.Output["in_flight"] != 0 {
		t.Fatalf("drain: %+v %v", r.res, r.err)
	}
	if got := <-answer; got != "200 slow done <nil>" {
		t.Fatalf("the request in flight during the drain got %q", got)
	}
	if st := l.waitStatus(t, "web1", "DRAIN"); st.Sessions != 0 {
		t.Fatalf("web1 after the drain: %+v", st)
	}
	// web2 serves what web1 no longer takes.
	if status, body, err := fixture.Get(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/", l.proxy.Port)); status != 200 || err != nil {
		t.Fatalf("through haproxy while web1 drains: %d %q %v", status, body, err)
	}

	res, err := l.server("web1").Undrain(context.Background(), time.Minute)
	if err != nil || !strings.Contains(res.Message, "haproxy app/web1 is back in rotation: UP") {
		t.Fatalf("undrain: %+v %v", res, err)
	}
	l.waitStatus(t, "web1", "UP")
}

func TestDrainTimeoutReportsRequestsInFlight(t *testing.T) {
	l := newLB(t)
	answer := l.slowRequest(t)
	res, err := l.server("web1").Drain(context.Background(), 300*time.Millisecond)
	if err != nil || res.Message != "drained haproxy app/web1: 1 request still in flight after drain_timeout 300ms" || res.Output["in_flight"] != 1 {
		t.Fatalf("drain: %+v %v", res, err)
	}
	close(l.web1.release)
	<-answer
}

// A drain cut short (the run was interrupted) puts the server back: the
// step failed, so nothing will stop the instance.
func TestDrainInterrupted(t *testing.T) {
	l := newLB(t)
	answer := l.slowRequest(t)
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := l.server("web1").Drain(ctx, time.Minute)
		done <- err
	}()
	l.waitStatus(t, "web1", "DRAIN")
	cancel(errors.New("interrupted (SIGTERM)"))
	err := <-done
	// Interrupted between two reads of the sessions, or during one.
	if err == nil || !regexp.MustCompile(`^haproxy app/web1 was draining(, 1 request in flight)?: interrupted \(SIGTERM\); set ready again$`).MatchString(err.Error()) {
		t.Fatalf("drain: %v", err)
	}
	l.waitStatus(t, "web1", "UP")
	close(l.web1.release)
	<-answer
}

func TestDrainRefused(t *testing.T) {
	l := newLB(t)
	missing := filepath.Join(filepath.Dir(l.proxy.Socket), "nope.sock")
	tests := []struct {
		name string
		h    *balancer.HAProxy
		want string
	}{
		{"unknown server", &balancer.HAProxy{Socket: l.proxy.Socket, Backend: "app", Server: "web9"},
			`haproxy refused "set server app/web9 state drain": No such server. (backend and server must name a server of HAProxy's config`},
		{"unknown backend", &balancer.HAProxy{Socket: l.proxy.Socket, Backend: "shop", Server: "web1"},
			`haproxy refused "set server shop/web1 state drain": No such backend.`},
		{"missing socket", &balancer.HAProxy{Socket: missing, Backend: "app", Server: "web1"},
			"haproxy socket " + missing + ": dial unix " + missing + ": connect: no such file or directory (is HAProxy running, with \"stats socket " + missing + " mode 660 level admin\" in its global section?)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops := []struct {
				state string
				do    func(context.Context, time.Duration) (balancer.Result, error)
			}{{"drain", tt.h.Drain}, {"ready", tt.h.Undrain}}
			for _, op := range ops {
				res, err := op.do(context.Background(), time.Second)
				want := strings.ReplaceAll(tt.want, "state drain", "state "+op.state)
				if err == nil || strings.Contains(err.Error(), "\n") || !strings.Contains(err.Error(), want) {
					t.Fatalf("%s: got %+v %v\nwant one line with %s", op.state, res, err, want)
				}
			}
		})
	}
	l.waitStatus(t, "web1", "UP") // nothing was changed
}

func TestUndrainFailsWhileHealthCheckFails(t *testing.T) {
	l := newLB(t)
	if _, err := l.server("web2").Drain(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	l.web2.health.Store(http.StatusServiceUnavailable)
	l.waitStatus(t, "web2", "DOWN")
	if drained, err := l.server("web2").Drained(context.Background()); !drained || err != nil {
		t.Fatalf("a drained server that is DOWN: drained %v, %v", drained, err)
	}
	res, err := l.server("web2").Undrain(context.Background(), 500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "haproxy app/web2 is DOWN, not UP, after undrain_timeout 500ms, health check: Layer7 wrong status (503)") {
		t.Fatalf("undrain of a failing server: %+v %v", res, err)
	}
	l.web2.health.Store(http.StatusOK)
	if _, err := l.server("web2").Undrain(context.Background(), 30*time.Second); err != nil {
		t.Fatalf("undrain once the check passes: %v", err)
	}
	if drained, err := l.server("web2").Drained(context.Background()); drained || err != nil {
		t.Fatalf("after undrain: drained %v, %v", drained, err)
	}
	if _, err := l.server("web9").Drained(context.Background()); err == nil || !strings.Contains(err.Error(), "haproxy has no server web9 in backend app") {
		t.Fatalf("an unknown server: %v", err)
	}
}
