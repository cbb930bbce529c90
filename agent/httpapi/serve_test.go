package httpapi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/baepo/baepo/agent"
)

// serveAgent runs Serve, as baepo-agent does, with the http: settings given
// and the slow driver; it returns the address and the slow driver's
// release channel.
func serveAgent(t *testing.T, http string) (string, chan struct{}) {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "token"), []byte(testToken), 0o600)
	p := filepath.Join(dir, "agent.yaml")
	os.WriteFile(p, []byte("listen: 127.0.0.1:0\ntoken_file: token\ndata_dir: data\nhttp: "+http+"\nservices:\n  A:\n    driver: slow\n    instances:\n      a1: { port: 1 }\n"), 0o600)
	cfg, err := agent.LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	log := slog.New(slog.DiscardHandler)
	a, err := agent.New(context.Background(), cfg, log, agent.Builtin{"slow": slowDriver{release: release}}, "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, a, cfg, log, time.Second, func(ad net.Addr) { addr <- ad.String() }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		a.Close()
	})
	select {
	case ad := <-addr:
		return ad, release
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	return "", nil
}

// TestServeTimeouts: the read and write timeouts bound each read of a body
// and each write of a response, not a request: a step that streams nothing
// for longer than both still runs to its end, while an upload that stalls
// is cut off.
func TestServeTimeouts(t *testing.T) {
	addr, release := serveAgent(t, "{ read_timeout: 200ms, write_timeout: 200ms, read_header_timeout: 200ms, idle_timeout: 200ms }")

	t.Run("quiet step", func(t *testing.T) {
		req, _ := http.NewRequest("POST", "http://"+addr+"/v1/services/A/instances/a1/steps/stop", strings.NewReader(`{"run":"r1"}`))
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		events := bufio.NewReader(resp.Body)
		if line, err := events.ReadString('\n'); err != nil || !strings.Contains(line, `"msg":"waiting"`) {
			t.Fatalf("first event %q, %v", line, err)
		}
		// Nothing is read or written for five times the timeouts.
		time.Sleep(time.Second)
		close(release)
		rest, err := io.ReadAll(events)
		if err != nil || !strings.Contains(string(rest), `"message":"stopped"`) {
			t.Fatalf("after a quiet second the step ended with %q, %v", rest, err)
		}
	})

	t.Run("stalled upload", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		digest := strings.Repeat("ab", 32)
		fmt.Fprintf(c, "PUT /v1/artifacts/sha256/%s HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer %s\r\nContent-Length: 1000\r\n\r\nPK\x03\x04", digest, testToken)
		c.SetReadDeadline(time.Now().Add(20 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("a stalled upload got no answer: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusCreated || !strings.Contains(string(body), "request body: nothing arrived for 200ms") {
			t.Fatalf("a stalled upload: %d %s", resp.StatusCode, body)
		}
	})
}
