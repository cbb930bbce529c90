package httpapi

import (
	"archive/zip"
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
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/baepo/baepo/agent"
	"github.com/baepo/baepo/agent/api"
	"github.com/baepo/baepo/sdk"
)

// slowDriver answers at once except Stop, which waits for its channel: the
// API tests need a step that holds the instance. The core is tested
// against a driver in package agent, the real drivers end to end.
type slowDriver struct{ release chan struct{} }

func (d slowDriver) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "slow", Steps: []sdk.StepInfo{{Name: "ping", Doc: "answers"}}}, nil
}
func (slowDriver) Validate(context.Context, sdk.Instance) error { return nil }
func (slowDriver) Start(context.Context, sdk.Instance) (sdk.Result, error) {
	return sdk.Result{Message: "started"}, nil
}
func (d slowDriver) Stop(ctx context.Context, _ sdk.Instance) (sdk.Result, error) {
	sdk.Progress(ctx, "waiting")
	select {
	case <-d.release:
	case <-ctx.Done():
		return sdk.Result{}, ctx.Err()
	}
	return sdk.Result{Message: "stopped"}, nil
}
func (slowDriver) Install(context.Context, sdk.Instance, sdk.Release) (sdk.Result, error) {
	return sdk.Result{Message: "installed"}, nil
}
func (slowDriver) Status(context.Context, sdk.Instance) (sdk.Status, error) { return sdk.Status{}, nil }
func (slowDriver) Logs(context.Context, sdk.Instance, int) (string, error)  { return "", nil }
func (slowDriver) Step(_ context.Context, _ sdk.Instance, name string, _ map[string]string) (sdk.Result, error) {
	return sdk.Result{Message: "pong"}, nil
}

const testToken = "test-token-0123456789"

func testAgent(t *testing.T) (*httptest.Server, chan struct{}) {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "token"), []byte(testToken), 0o600)
	p := filepath.Join(dir, "agent.yaml")
	os.WriteFile(p, []byte("token_file: token\ndata_dir: data\ncommands:\n  hello: [/bin/echo, \"{arg:who}\"]\nservices:\n  A:\n    driver: slow\n    instances:\n      a1: { port: 1 }\n      a2: { port: 2 }\n"), 0o600)
	cfg, err := agent.LoadConfig(p)
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	a, err := agent.New(context.Background(), cfg, slog.New(slog.DiscardHandler), agent.Builtin{"slow": slowDriver{release: release}}, "test")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(a, cfg.Token(), slog.New(slog.DiscardHandler)))
	t.Cleanup(func() { srv.Close(); a.Close() })
	return srv, release
}

func call(t *testing.T, srv *httptest.Server, method, path, token string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data)
}

func zipBytes(t *testing.T) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	f, _ := w.Create("index.html")
	f.Write([]byte("hello"))
	w.Close()
	return b.Bytes()
}

func TestAPIErrors(t *testing.T) {
	srv, _ := testAgent(t)
	war := zipBytes(t)
	sum := sha256.Sum256(war)
	digest := hex.EncodeToString(sum[:])
	tests := []struct {
		name, method, path, token string
		body                      []byte
		status                    int
		code                      string
	}{
		{"healthz needs no token", "GET", "/healthz", "", nil, 200, ""},
		{"no token", "GET", "/v1/services", "", nil, 401, api.CodeAuth},
		{"wrong token", "GET", "/v1/services", "nope", nil, 401, api.CodeAuth},
		{"metrics need a token", "GET", "/metrics", "", nil, 401, api.CodeAuth},
		{"unknown service", "POST", "/v1/services/B/instances/a1/steps/stop", testToken, nil, 404, api.CodeNotFound},
		{"unknown instance", "POST", "/v1/services/A/instances/a9/steps/stop", testToken, nil, 404, api.CodeNotFound},
		{"dot dot", "POST", "/v1/services/../instances/a1/steps/stop", testToken, nil, 400, api.CodeBadRequest},
		{"unknown step", "POST", "/v1/services/A/instances/a1/steps/dance", testToken, nil, 404, api.CodeNotFound},
		{"bad json", "POST", "/v1/services/A/instances/a1/steps/start", testToken, []byte("{"), 400, api.CodeBadRequest},
		{"body too large", "POST", "/v1/services/A/instances/a1/steps/start", testToken, []byte(`{"args":{"x":"` + strings.Repeat("x", MaxJSONBody) + `"}}`), 413, api.CodeTooLarge},
		{"install without upload", "POST", "/v1/services/A/instances/a1/steps/install", testToken, []byte(`{"args":{"artifact":{"sha256":"` + digest + `"}}}`), 404, api.CodeNotFound},
		{"command argument unknown", "POST", "/v1/services/A/instances/a1/steps/run", testToken, []byte(`{"args":{"command":"hello","whom":"x"}}`), 400, api.CodeBadRequest},
		{"command argument missing", "POST", "/v1/services/A/instances/a1/steps/run", testToken, []byte(`{"args":{"command":"hello"}}`), 400, api.CodeBadRequest},
		{"command not allowed", "POST", "/v1/services/A/instances/a1/steps/run", testToken, []byte(`{"args":{"command":"rm"}}`), 404, api.CodeNotFound},
		{"health timeout overflows", "POST", "/v1/services/A/instances/a1/steps/health", testToken, []byte(`{"args":{"timeout":1e300}}`), 400, api.CodeBadRequest},
		{"health timeout negative", "POST", "/v1/services/A/instances/a1/steps/health", testToken, []byte(`{"args":{"timeout":-5}}`), 400, api.CodeBadRequest},
		{"health timeout negative string", "POST", "/v1/services/A/instances/a1/steps/health", testToken, []byte(`{"args":{"timeout":"-5s"}}`), 400, api.CodeBadRequest},
		{"bad digest", "PUT", "/v1/artifacts/sha256/xyz", testToken, war, 400, api.CodeBadRequest},
		{"digest mismatch", "PUT", "/v1/artifacts/sha256/" + strings.Repeat("0", 64), testToken, war, 422, api.CodeBadArtifact},
		{"not a zip", "PUT", "/v1/artifacts/sha256/" + hex.EncodeToString(func() []byte { s := sha256.Sum256([]byte("text")); return s[:] }()), testToken, []byte("text"), 422, api.CodeBadArtifact},
		{"upload", "PUT", "/v1/artifacts/sha256/" + digest, testToken, war, 201, ""},
		{"has it", "HEAD", "/v1/artifacts/sha256/" + digest, testToken, nil, 200, ""},
		{"no such endpoint", "GET", "/v2/x", testToken, nil, 404, api.CodeNotFound},
		{"no such endpoint, newline in the path", "PUT", "/v1/runs/%0A%2F", "", nil, 404, api.CodeNotFound},
		{"end of a run, data after the JSON", "PUT", "/v1/runs/r9", testToken, []byte(`{"outcome":"succeeded","exit_code":0} {}`), 400, api.CodeBadRequest},
		{"end of a run with no step here", "PUT", "/v1/runs/r9", testToken, []byte(`{"outcome":"succeeded","exit_code":0}`), 404, api.CodeNotFound},
		{"end of a run without outcome", "PUT", "/v1/runs/r9", testToken, []byte(`{"exit_code":0}`), 400, api.CodeBadRequest},
		{"end of a run, unknown field", "PUT", "/v1/runs/r9", testToken, []byte(`{"outcom":"succeeded"}`), 400, api.CodeBadRequest},
		{"runs are not read one by one", "GET", "/v1/runs/r9", testToken, nil, 405, api.CodeNotAllowed},
		{"history, bad since", "GET", "/v1/history?since=yesterday", testToken, nil, 400, api.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := call(t, srv, tt.method, tt.path, tt.token, tt.body)
			if status != tt.status || (tt.code != "" && !strings.Contains(body, `"code":"`+tt.code+`"`)) {
				t.Fatalf("%d %s, want %d %s", status, body, tt.status, tt.code)
			}
			var refusal api.Error
			if json.Unmarshal([]byte(body), &refusal) == nil && strings.Contains(refusal.Message, "\n") {
				t.Fatalf("a refusal of more than one line: %s", body)
			}
		})
	}
}

func TestBusy(t *testing.T) {
	srv, release := testAgent(t)
	stop := func(run string) func() (int, string) {
		var status int
		var body string
		done := make(chan struct{})
		go func() {
			defer close(done)
			req, _ := http.NewRequest("POST", srv.URL+"/v1/services/A/instances/a1/steps/stop", strings.NewReader(`{"run":"`+run+`","build":{"tag":"jenkins-app-1"}}`))
			req.Header.Set("Authorization", "Bearer "+testToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return
			}
			defer resp.Body.Close()
			status = resp.StatusCode
			data, _ := io.ReadAll(resp.Body)
			body = string(data)
		}()
		return func() (int, string) { <-done; return status, body }
	}
	first := stop("run-1")
	// The first stop holds a1 (it waits for release); wait until it does.
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body := call(t, srv, "GET", "/v1/services/A/instances/a1", testToken, nil)
		if status == 200 && strings.Contains(body, "locked_by") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first stop never took the lock")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Another run: the service is leased to run-1.
	status, body := call(t, srv, "POST", "/v1/services/A/instances/a2/steps/start", testToken, []byte(`{"run":"run-2"}`))
	if status != 409 || !strings.Contains(body, "jenkins-app-1") || !strings.Contains(body, `"holder"`) {
		t.Fatalf("other run: %d %s", status, body)
	}
	// No run id: the lease answers all the same.
	status, body = call(t, srv, "POST", "/v1/services/A/instances/a1/steps/start", testToken, nil)
	if status != 409 || !strings.Contains(body, "service A is busy: another run (build jenkins-app-1)") {
		close(release)
		t.Fatalf("no run id: %d %s", status, body)
	}
	close(release)
	if status, body := first(); status != 200 || !strings.Contains(body, `"message":"stopped"`) || !strings.Contains(body, `"msg":"waiting"`) {
		t.Fatalf("first stop: %d %s", status, body)
	}
	// run-1 releases its lease; run-2 may go on.
	call(t, srv, "DELETE", "/v1/services/A/lease/run-1", testToken, nil)
	if status, body := call(t, srv, "POST", "/v1/services/A/instances/a2/steps/start", testToken, []byte(`{"run":"run-2"}`)); status != 200 || !strings.Contains(body, "started") {
		t.Fatalf("after release: %d %s", status, body)
	}
	status, body = call(t, srv, "GET", "/metrics", testToken, nil)
	if status != 200 || !strings.Contains(body, `baepo_agent_steps_total{result="ok",step="stop"} 1`) || !strings.Contains(body, "baepo_agent_step_duration_seconds_bucket") {
		t.Fatalf("metrics: %d %s", status, body)
	}
	status, body = call(t, srv, "GET", "/v1/history?service=A&limit=2", testToken, nil)
	if status != 200 || !strings.Contains(body, `"step":"start"`) || !strings.Contains(body, "jenkins-app-1") {
		t.Fatalf("history: %d %s", status, body)
	}
}

// TestClient drives the typed client of package api against the real
// router: every call, and the errors it hands back as *api.Error.
func TestClient(t *testing.T) {
	srv, release := testAgent(t)
	close(release)
	ctx := context.Background()
	c := &api.Client{Base: srv.URL, Token: testToken}

	svcs, err := c.Services(ctx)
	if err != nil || len(svcs.Services) != 1 || strings.Join(svcs.Services[0].Instances, ",") != "a1,a2" {
		t.Fatalf("Services = %+v, %v", svcs, err)
	}
	// What a flow may call, for a dry run to check without changing
	// anything: the allow-listed commands with their arguments, and the
	// driver's own steps.
	wantCommands := []api.Command{{Name: "hello", Args: []string{"who"}}}
	wantSteps := []api.DriverStep{{Name: "ping", Doc: "answers"}}
	if !reflect.DeepEqual(svcs.Commands, wantCommands) || !reflect.DeepEqual(svcs.Services[0].Steps, wantSteps) {
		t.Fatalf("Services: commands %+v, steps %+v; want %+v, %+v", svcs.Commands, svcs.Services[0].Steps, wantCommands, wantSteps)
	}
	info, err := c.Agent(ctx)
	if err != nil || info.Version != "test" || strings.Join(info.Drivers, ",") != "slow" {
		t.Fatalf("Agent = %+v, %v", info, err)
	}

	var progress []string
	res, err := c.Step(ctx, "A", "a1", "stop", api.StepRequest{Run: "run-1"}, func(ev api.Event) { progress = append(progress, ev.Msg) })
	if err != nil || res.Message != "stopped" || strings.Join(progress, ",") != "waiting" {
		t.Fatalf("Step = %+v, %v, progress %v", res, err, progress)
	}
	_, err = c.Step(ctx, "A", "a1", "start", api.StepRequest{Run: "run-2"}, nil)
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Code != api.CodeBusy || ae.Holder == nil || ae.Holder.Run != "run-1" {
		t.Fatalf("Step of another run = %v, want busy", err)
	}
	if ok, err := c.ReleaseLease(ctx, "A", "run-1"); !ok || err != nil {
		t.Fatalf("ReleaseLease = %v, %v", ok, err)
	}
	if _, err := c.Step(ctx, "A", "a1", "dance", api.StepRequest{}, nil); !errors.As(err, &ae) || ae.Code != api.CodeNotFound {
		t.Fatalf("unknown step = %v", err)
	}

	war := zipBytes(t)
	sum := sha256.Sum256(war)
	digest := hex.EncodeToString(sum[:])
	if has, err := c.HasArtifact(ctx, digest); has || err != nil {
		t.Fatalf("HasArtifact before upload = %v, %v", has, err)
	}
	if st, err := c.PutArtifact(ctx, digest, bytes.NewReader(war), int64(len(war))); err != nil || st.Size != int64(len(war)) {
		t.Fatalf("PutArtifact = %+v, %v", st, err)
	}
	if has, err := c.HasArtifact(ctx, digest); !has || err != nil {
		t.Fatalf("HasArtifact after upload = %v, %v", has, err)
	}
	if _, err := c.PutArtifact(ctx, strings.Repeat("0", 64), bytes.NewReader(war), int64(len(war))); !errors.As(err, &ae) || ae.Code != api.CodeBadArtifact {
		t.Fatalf("PutArtifact of a wrong digest = %v", err)
	}

	h, err := c.History(ctx, api.HistoryQuery{Service: "A", Step: "stop", Limit: 5})
	if err != nil || len(h.Entries) != 1 || h.Entries[0].Result != "ok" || h.Entries[0].Run != "run-1" {
		t.Fatalf("History = %+v, %v", h, err)
	}
	if len(h.Runs) != 1 || h.Runs[0].ID != "run-1" || h.Runs[0].Outcome != api.OutcomeRunning || h.Runs[0].ExitCode != nil {
		t.Fatalf("History's runs while run-1 runs = %+v", h.Runs)
	}
	end := api.RunEnd{Started: time.Now().Add(-time.Minute), Duration: time.Minute, Template: "deploy", Outcome: "succeeded",
		Artifacts: []api.ArtifactRef{{SHA256: digest, Name: "app.war"}}, Counts: map[string]int{"ok": 2}}
	if run, err := c.EndRun(ctx, "run-1", end); err != nil || run.Outcome != "succeeded" || run.ExitCode == nil || *run.ExitCode != 0 || run.Artifacts[0].Name != "app.war" {
		t.Fatalf("EndRun = %+v, %v", run, err)
	}
	if _, err := c.EndRun(ctx, "run-2", end); !errors.As(err, &ae) || ae.Code != api.CodeNotFound {
		t.Fatalf("EndRun of a run that ran no step here = %v, want not_found", err)
	}
	if h, err := c.History(ctx, api.HistoryQuery{Build: "jenkins-none"}); err != nil || len(h.Runs) != 0 || h.Runs == nil || len(h.Entries) != 0 {
		t.Fatalf("History of another build = %+v, %v; want empty lists", h, err)
	}
	if h, err := c.History(ctx, api.HistoryQuery{Instance: "a1"}); err != nil || len(h.Runs) != 1 || h.Runs[0].Counts["ok"] != 2 || h.Runs[0].Template != "deploy" {
		t.Fatalf("History of a1 = %+v, %v; want run-1 as it ended", h.Runs, err)
	}
	st, err := c.Instance(ctx, "A", "a1")
	if err != nil || st.Output["running"] != false {
		t.Fatalf("Instance = %+v, %v", st, err)
	}

	bad := &api.Client{Base: srv.URL, Token: "wrong-token-0123456789"}
	if _, err := bad.Services(ctx); !errors.As(err, &ae) || ae.Code != api.CodeAuth {
		t.Fatalf("wrong token = %v", err)
	}
	if _, err := bad.HasArtifact(ctx, digest); !errors.As(err, &ae) || ae.Code != api.CodeAuth {
		t.Fatalf("HEAD with a wrong token = %v", err)
	}
}
