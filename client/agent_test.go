package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/baepo/baepo/agent/api"
	"github.com/baepo/baepo/engine"
)

// stubAgent answers the agent API as a test says; it lists service A with
// instance a1.
type stubAgent struct {
	// step answers POST of a step; nil answers 404.
	step func(w http.ResponseWriter, step string)
}

func (s *stubAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodGet && r.URL.Path == api.RouteServices:
		json.NewEncoder(w).Encode(api.Services{Services: []api.Service{{Name: "A", Driver: "tomcat", Instances: []string{"a1"}}}})
	case r.Method == http.MethodPost && s.step != nil:
		s.step(w, r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:])
	default:
		writeAPIError(w, http.StatusNotFound, api.Errorf(api.CodeNotFound, "no route %s %s", r.Method, r.URL.Path))
	}
}

func writeAPIError(w http.ResponseWriter, status int, e *api.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(e)
}

// agentsOf returns the target of one server, web01, whose agent is srv.
func agentsOf(srv *httptest.Server, logs io.Writer) *Agents {
	inv := &Inventory{File: "inventory.yaml", Servers: map[string]Server{"web01": {Name: "web01", Agent: srv.URL, TokenEnv: "T"}}}
	return newAgents(inv, func(string) string { return "secret" }, slog.New(slog.NewTextHandler(logs, nil)))
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
			a := agentsOf(srv, io.Discard)
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
