package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/baepo/baepo/agent/api"
	"github.com/baepo/baepo/engine"
)

// A dry run's check reads what the agent allows and refuses, in the
// agent's words and as engine.ErrRefused, what the agent would refuse;
// it sends no step.
func TestCheck(t *testing.T) {
	allows := api.Services{
		Services: []api.Service{{Name: "A", Driver: "jar", Instances: []string{"a1"}, Steps: []api.DriverStep{{Name: "thread-dump"}}}},
		Commands: []api.Command{{Name: "drain", Args: []string{"seconds"}}},
	}
	old := api.Services{Services: []api.Service{{Name: "A", Driver: "jar", Instances: []string{"a1"}}}}
	restartOnly := api.Services{Services: []api.Service{{Name: "A", Driver: "jetty", Instances: []string{"a1"}, Mode: "restart"}}}
	hot := api.Services{Services: []api.Service{{Name: "A", Driver: "tomcat", Instances: []string{"a1"}, Mode: "restart", HotDeploy: true}}}
	tests := []struct {
		name     string
		services api.Services
		step     string
		args     map[string]any
		refusal  string // "" for none
		reads    int32  // GETs of the services
		balancer string // the instance's, as Instances read it
	}{
		{name: "allow-listed", services: allows, step: "run", args: map[string]any{"command": "drain", "seconds": 30}, reads: 1},
		{name: "not allow-listed", services: allows, step: "run", args: map[string]any{"command": "migrate"}, reads: 1,
			refusal: `web01: command "migrate" is not allow-listed on this agent (commands: drain)`},
		{name: "missing argument", services: allows, step: "run", args: map[string]any{"command": "drain"}, reads: 1,
			refusal: `web01: command drain: missing argument "seconds" (drain takes seconds)`},
		{name: "driver's step", services: allows, step: "thread-dump", reads: 1},
		{name: "no such step", services: allows, step: "heap-dump", reads: 1,
			refusal: `web01: unknown step "heap-dump" for A/a1 (core steps: stop, start, restart, install, rollback, health, status, logs, drain, undrain, run; driver jar steps: thread-dump)`},
		{name: "core step: nothing to ask", services: allows, step: "stop"},
		{name: "an agent that does not say", services: old, step: "run", args: map[string]any{"command": "migrate"}, reads: 1},
		{name: "hot install, hot driver", services: hot, step: "install", args: map[string]any{"mode": "hot"}, reads: 1},
		{name: "hot rollback, restart-only driver", services: restartOnly, step: "rollback", args: map[string]any{"mode": "hot"}, reads: 1,
			refusal: "web01: rollback: args.mode hot: driver jetty of A/a1 cannot hot deploy; use mode restart"},
		{name: "hot install, restart-only driver", services: restartOnly, step: "install", args: map[string]any{"mode": "hot"}, reads: 1,
			refusal: "web01: install: args.mode hot: driver jetty of A/a1 cannot hot deploy; use mode restart"},
		{name: "restart install: nothing to ask", services: restartOnly, step: "install", args: map[string]any{"mode": "restart"}},
		{name: "hot install, an agent that does not say", services: old, step: "install", args: map[string]any{"mode": "hot"}, reads: 1},
		{name: "drain with a balancer", services: allows, step: "drain", balancer: "haproxy"},
		{name: "drain without a balancer", services: allows, step: "drain",
			refusal: "web01: drain: instance A/a1 has no balancer: add balancer: to services.A (or to the instance) in agent.yaml"},
		{name: "undrain without a balancer", services: allows, step: "undrain",
			refusal: "web01: undrain: instance A/a1 has no balancer: add balancer: to services.A (or to the instance) in agent.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var reads, others atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet && r.URL.Path == api.RouteServices {
					reads.Add(1)
					json.NewEncoder(w).Encode(tt.services)
					return
				}
				others.Add(1)
				writeAPIError(w, http.StatusNotFound, api.Errorf(api.CodeNotFound, "no route"))
			}))
			defer srv.Close()
			a := agentsOf(srv, uploadRetry, io.Discard)
			err := a.Check(context.Background(), engine.Instance{Server: "web01", Service: "A", Name: "a1", Balancer: tt.balancer}, engine.Step{Name: tt.step, Args: tt.args})
			switch {
			case tt.refusal == "" && err != nil:
				t.Fatalf("err = %v, want none", err)
			case tt.refusal != "" && (err == nil || err.Error() != tt.refusal || !errors.Is(err, engine.ErrRefused)):
				t.Fatalf("err = %v, want engine.ErrRefused saying %q", err, tt.refusal)
			}
			if reads.Load() != tt.reads || others.Load() != 0 {
				t.Fatalf("%d reads of the services and %d other requests, want %d and none", reads.Load(), others.Load(), tt.reads)
			}
		})
	}
}

// Instances gives each instance the balancer the agent lists for it.
func TestInstancesBalancer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(api.Services{Services: []api.Service{
			{Name: "A", Driver: "tomcat", Instances: []string{"a1", "a2"}, Balancers: map[string]string{"a1": "haproxy"}},
		}})
	}))
	defer srv.Close()
	insts, err := agentsOf(srv, uploadRetry, io.Discard).Instances(context.Background(), "web01", "A")
	if err != nil {
		t.Fatal(err)
	}
	if len(insts) != 2 || insts[0].Balancer != "haproxy" || insts[1].Balancer != "" {
		t.Fatalf("instances = %+v", insts)
	}
}
