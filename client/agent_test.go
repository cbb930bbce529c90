package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
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
	// endRun answers PUT of a run's end; nil answers 404, as an agent
	// older than run records does.
	endRun func(w http.ResponseWriter, run string, end api.RunEnd)

	mu     sync.Mutex
	puts   int
	stored []byte
	calls  []string // "METHOD path" of every lease and run call
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
	case strings.HasPrefix(r.URL.Path, "/v1/runs/") || strings.Contains(r.URL.Path, "/lease/"):
		s.mu.Lock()
		s.calls = append(s.calls, r.Method+" "+r.URL.Path)
		s.mu.Unlock()
		var end api.RunEnd
		switch {
		case r.Method == http.MethodDelete:
			json.NewEncoder(w).Encode(api.Released{Released: true})
		case s.endRun != nil && json.NewDecoder(r.Body).Decode(&end) == nil:
			s.endRun(w, strings.TrimPrefix(r.URL.Path, "/v1/runs/"), end)
		default:
			writeAPIError(w, http.StatusNotFound, api.Errorf(api.CodeNotFound, "no such endpoint %s %s", r.Method, r.URL.Path))
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
	return fleetOf(map[string]*httptest.Server{"web01": srv}, p, logs)
}

// fleetOf returns the target of servers, each named for its agent.
func fleetOf(servers map[string]*httptest.Server, p retryPolicy, logs io.Writer) *Agents {
	inv := &Inventory{File: "inventory.yaml", Servers: map[string]Server{}}
	for name, srv := range servers {
		inv.Servers[name] = Server{Name: name, Agent: srv.URL, TokenEnv: "T"}
	}
	a := newAgents(inv, func(string) string { return "secret" }, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
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

// okStep answers a step with a result.
func okStep(w http.ResponseWriter, step string) {
	json.NewEncoder(w).Encode(api.Event{Result: &api.StepResult{Message: step + " ok"}})
}

// When a run ends, every agent it sent a journaled step hears how: the
// outcome, exit code and counts of the whole run, the artifact's digest.
// An agent it only read from hears nothing, and an agent that keeps no
// record of the run (an older one) is no failure.
func TestEndRun(t *testing.T) {
	var mu sync.Mutex
	ends := map[string][]api.RunEnd{}
	recorder := func(server string) func(http.ResponseWriter, string, api.RunEnd) {
		return func(w http.ResponseWriter, run string, end api.RunEnd) {
			mu.Lock()
			ends[server+" "+run] = append(ends[server+" "+run], end)
			mu.Unlock()
			code := end.ExitCode
			json.NewEncoder(w).Encode(api.Run{ID: run, Outcome: end.Outcome, ExitCode: &code})
		}
	}
	stubs := map[string]*stubAgent{
		"web01": {step: okStep, endRun: recorder("web01")},
		"web02": {step: okStep, endRun: recorder("web02")}, // only read from
		"web03": {step: okStep},                            // older than run records
	}
	servers := map[string]*httptest.Server{}
	for name, stub := range stubs {
		stub.put = func(w http.ResponseWriter, r *http.Request, _ int) { stub.store(w, r) }
		servers[name] = httptest.NewServer(stub)
		defer servers[name].Close()
	}
	var logs bytes.Buffer
	a := fleetOf(servers, uploadRetry, &logs)
	ctx := context.Background()
	war := warFile(t)
	art := engine.Artifact{Path: war}
	if err := a.Prepare(ctx, []string{"web01", "web03"}, []engine.Artifact{art}); err != nil {
		t.Fatal(err)
	}
	for _, call := range []struct{ server, step string }{{"web01", "stop"}, {"web01", "health"}, {"web02", "status"}, {"web03", "health"}} {
		if _, err := a.Do(ctx, engine.Instance{Server: call.server, Service: "A", Name: "a1"}, engine.Step{Name: call.step}); err != nil {
			t.Fatal(err)
		}
	}
	rep := sampleReport()
	a.End(ctx, rep)

	data, _ := os.ReadFile(war)
	sum := sha256.Sum256(data)
	mu.Lock()
	defer mu.Unlock()
	got := ends["web01 "+a.run]
	if len(got) != 1 || len(ends) != 1 {
		t.Fatalf("ends = %+v, want one, from web01, of run %s", ends, a.run)
	}
	end := got[0]
	want := api.RunEnd{Started: rep.Started, Duration: rep.Duration, Template: "deploy", Outcome: engine.OutcomeRolledBack, ExitCode: engine.ExitRolledBack,
		Artifacts: []api.ArtifactRef{{SHA256: hex.EncodeToString(sum[:]), Name: "app.war"}}, Counts: map[string]int{"ok": 1, "rolled-back": 1, "skipped": 1}}
	if fmt.Sprint(end) != fmt.Sprint(want) || !end.Started.Equal(want.Started) {
		t.Errorf("end = %+v\nwant %+v", end, want)
	}
	for name, want := range map[string]string{
		"web01": "DELETE /v1/services/A/lease/" + a.run + ",PUT /v1/runs/" + a.run, // it changed A there
		"web02": "",
		"web03": "PUT /v1/runs/" + a.run,
	} {
		calls := slices.Clone(stubs[name].calls)
		slices.Sort(calls)
		if got := strings.Join(calls, ","); got != want {
			t.Errorf("%s got %q, want %q", name, got, want)
		}
	}
	if strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "the agent keeps no record of the run") {
		t.Errorf("log:\n%s", logs.String())
	}
}
