package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/baepo/baepo/agent/api"
	"github.com/baepo/baepo/engine"
)

// stubAgent answers the agent API as a test says; it lists service A with
// instance a1.
type stubAgent struct {
	// step answers POST of a step; nil answers 404.
	step func(w http.ResponseWriter, step string)
	// put answers PUT of an artifact, with its attempt number from 1.
	put func(w http.ResponseWriter, r *http.Request, attempt int)

	mu     sync.Mutex
	puts   int
	stored []byte
}

func (s *stubAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == api.RouteServices:
		json.NewEncoder(w).Encode(api.Services{Services: []api.Service{{Name: "A", Driver: "tomcat", Instances: []string{"a1"}}}})
	case r.Method == http.MethodHead:
		s.mu.Lock()
		has := s.stored != nil
		s.mu.Unlock()
		if !has {
			w.WriteHeader(http.StatusNotFound)
		}
	case r.Method == http.MethodPut:
		s.mu.Lock()
		s.puts++
		n := s.puts
		s.mu.Unlock()
		s.put(w, r, n)
	case r.Method == http.MethodPost && s.step != nil:
		s.step(w, r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
	default:
		writeAPIError(w, http.StatusNotFound, api.Errorf(api.CodeNotFound, "no route %s %s", r.Method, r.URL.Path))
	}
}

// uploads returns how many PUTs came and what was stored.
func (s *stubAgent) uploads() (int, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.puts, s.stored
}

func writeAPIError(w http.ResponseWriter, status int, e *api.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(e)
}

// store reads an artifact's body in full and keeps it when its digest is
// the one in the path.
func (s *stubAgent) store(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(r.Body)
	sum := sha256.Sum256(data)
	if err != nil || !strings.HasSuffix(r.URL.Path, hex.EncodeToString(sum[:])) {
		writeAPIError(w, http.StatusUnprocessableEntity, api.Errorf(api.CodeBadArtifact, "digest mismatch: got %d bytes", len(data)))
		return
	}
	s.mu.Lock()
	s.stored = data
	s.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(api.Stored{SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data))})
}

// drop reads part of a request's body and closes the connection without
// an answer, as a network that fails mid-upload does.
func drop(t *testing.T, w http.ResponseWriter, r *http.Request) {
	io.CopyN(io.Discard, r.Body, 1000)
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		t.Error(err)
		return
	}
	conn.Close()
}

// agentsOf returns the target of one server, web01, whose agent is srv,
// with the upload retry policy p.
func agentsOf(srv *httptest.Server, p retryPolicy, logs io.Writer) *Agents {
	inv := &Inventory{File: "inventory.yaml", Servers: map[string]Server{"web01": {Name: "web01", Agent: srv.URL, TokenEnv: "T"}}}
	a := newAgents(inv, func(string) string { return "secret" }, slog.New(slog.NewTextHandler(logs, nil)))
	a.retry = p
	return a
}

// warFile writes an artifact of 1 MB, larger than what drop reads.
func warFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.war")
	if err := os.WriteFile(path, bytes.Repeat([]byte("PK baepo "), 1<<17), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// What an agent answers becomes what the engine reads: a step refused
// before it ran is engine.ErrRefused (nothing changed, exit 2 before a
// change), a busy agent engine.ErrBusy, refused credentials
// engine.ErrUnreachable, a step that ran and failed none of them.
func TestStepErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		err    *api.Error
		says   string
		want   error // nil: none of the engine's marks
	}{
		{"command not allow-listed", http.StatusNotFound, api.Errorf(api.CodeNotFound, `command "migrate" is not allow-listed on this agent (commands: none)`), `web01: command "migrate" is not allow-listed`, engine.ErrRefused},
		{"bad arguments", http.StatusBadRequest, api.Errorf(api.CodeBadRequest, "bad step name"), "web01: bad step name", engine.ErrRefused},
		{"busy", http.StatusConflict, api.Errorf(api.CodeBusy, "A/a1 is busy"), "web01: A/a1 is busy", engine.ErrBusy},
		{"credentials", http.StatusUnauthorized, api.Errorf(api.CodeAuth, "bad token"), "web01 refused the credentials", engine.ErrUnreachable},
		{"step failed", http.StatusOK, api.Errorf(api.CodeStepFailed, "port 8080 in use"), "port 8080 in use", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(&stubAgent{step: func(w http.ResponseWriter, _ string) {
				if tt.status != http.StatusOK {
					writeAPIError(w, tt.status, tt.err)
					return
				}
				json.NewEncoder(w).Encode(api.Event{Error: tt.err})
			}})
			defer srv.Close()
			a := agentsOf(srv, uploadRetry, io.Discard)
			_, err := a.Do(context.Background(), engine.Instance{Server: "web01", Service: "A", Name: "a1"}, engine.Step{Name: "run", Args: map[string]any{"command": "migrate"}})
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("err = %v, want one saying %q", err, tt.says)
			}
			for _, mark := range []error{engine.ErrRefused, engine.ErrBusy, engine.ErrUnreachable} {
				if errors.Is(err, mark) != (mark == tt.want) {
					t.Errorf("errors.Is(%v, %v) = %v", err, mark, !(mark == tt.want))
				}
			}
		})
	}
}

// An upload cut by the network is tried again, each time from the start
// of the file, and the agent stores the whole artifact.
func TestUploadRetry(t *testing.T) {
	stub := &stubAgent{}
	stub.put = func(w http.ResponseWriter, r *http.Request, attempt int) {
		if attempt < 3 {
			drop(t, w, r)
			return
		}
		stub.store(w, r)
	}
	srv := httptest.NewServer(stub)
	defer srv.Close()
	var logs bytes.Buffer
	a := agentsOf(srv, retryPolicy{tries: 4, first: time.Millisecond}, &logs)
	war := warFile(t)
	if err := a.Prepare(context.Background(), []string{"web01"}, []engine.Artifact{{Path: war}}); err != nil {
		t.Fatalf("prepare: %v\n%s", err, logs.String())
	}
	want, _ := os.ReadFile(war)
	if puts, stored := stub.uploads(); puts != 3 || !bytes.Equal(stored, want) {
		t.Fatalf("%d PUTs, %d of %d bytes stored\n%s", puts, len(stored), len(want), logs.String())
	}
	if strings.Count(logs.String(), "upload failed: trying again") != 2 || !strings.Contains(logs.String(), "artifact uploaded") {
		t.Fatalf("log:\n%s", logs.String())
	}
}

// An upload the network cuts every time ends the run with exit 4 (an
// agent could not be reached, nothing changed) after a bounded number of
// attempts, not with 2.
func TestUploadUnreachable(t *testing.T) {
	stub := &stubAgent{}
	stub.put = func(w http.ResponseWriter, r *http.Request, _ int) { drop(t, w, r) }
	stub.step = func(w http.ResponseWriter, step string) { t.Errorf("step %s ran after a failed upload", step) }
	srv := httptest.NewServer(stub)
	defer srv.Close()
	dir := t.TempDir()
	inv := filepath.Join(dir, "inventory.yaml")
	if err := os.WriteFile(inv, []byte("servers:\n  web01: { agent: \""+srv.URL+"\", token_env: T }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	app := &App{
		Getenv: func(k string) string {
			return map[string]string{"T": "secret", "BAEPO_INVENTORY": inv, "NO_COLOR": "1"}[k]
		},
		Stdout: &stdout, Stderr: &stderr,
		NewTarget: func(inv *Inventory, getenv func(string) string, logger *slog.Logger) (engine.Target, error) {
			a := newAgents(inv, getenv, logger)
			a.retry = retryPolicy{tries: 3, first: time.Millisecond}
			return a, nil
		},
	}
	code := app.Run(context.Background(), []string{"run", "deploy", "--server", "web01", "--service", "A", "--artifact", warFile(t)})
	if puts, _ := stub.uploads(); code != engine.ExitUnreachable || puts != 3 {
		t.Fatalf("exit %d after %d PUTs, want 4 after 3\nstdout:\n%s\nstderr:\n%s", code, puts, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "baepo: agent unreachable: upload ") || !strings.Contains(stderr.String(), "(3 attempts)") {
		t.Fatalf("stderr:\n%s", stderr.String())
	}
}
