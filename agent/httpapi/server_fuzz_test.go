package httpapi

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/baepo/baepo/agent"
	"github.com/baepo/baepo/agent/api"
	"github.com/baepo/baepo/sdk"
)

// fuzzDriver answers every call at once, so any step a fuzz input asks
// for runs to its end.
type fuzzDriver struct{}

func (fuzzDriver) Describe(context.Context) (sdk.Description, error) {
	return sdk.Description{Name: "fuzz", Steps: []sdk.StepInfo{{Name: "ping", Doc: "answers"}}}, nil
}
func (fuzzDriver) Validate(context.Context, sdk.Instance) error { return nil }
func (fuzzDriver) Start(context.Context, sdk.Instance) (sdk.Result, error) {
	return sdk.Result{Message: "started"}, nil
}
func (fuzzDriver) Stop(context.Context, sdk.Instance) (sdk.Result, error) {
	return sdk.Result{Message: "stopped"}, nil
}
func (fuzzDriver) Install(context.Context, sdk.Instance, sdk.Release) (sdk.Result, error) {
	return sdk.Result{Message: "installed"}, nil
}
func (fuzzDriver) Status(context.Context, sdk.Instance) (sdk.Status, error) {
	return sdk.Status{}, nil
}
func (fuzzDriver) Logs(context.Context, sdk.Instance, int) (string, error) { return "a log\n", nil }
func (fuzzDriver) Step(context.Context, sdk.Instance, string, map[string]string) (sdk.Result, error) {
	return sdk.Result{Message: "pong"}, nil
}

// fuzzAgent is the HTTP API of an agent with instances A/a1 and A/a2 of
// fuzzDriver, steps bounded to half a second, health waits to 50ms, and a
// WAR already uploaded, whose digest it returns with the handler and the
// data dir.
func fuzzAgent(f *testing.F) (h http.Handler, a *agent.Agent, dataDir, digest string) {
	dir := f.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "token"), []byte(testToken), 0o600); err != nil {
		f.Fatal(err)
	}
	p := filepath.Join(dir, "agent.yaml")
	os.WriteFile(p, []byte(`token_file: token
data_dir: data
step_timeout: 500ms
commands:
  hello: [/bin/echo, "{arg:who}"]
services:
  A:
    driver: fuzz
    keep_releases: 2
    health: { timeout: 50ms, interval: 10ms }
    instances:
      a1: { port: 1 }
      a2: { port: 2 }
`), 0o600)
	cfg, err := agent.LoadConfig(p)
	if err != nil {
		f.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	a, err = agent.New(context.Background(), cfg, log, agent.Builtin{"fuzz": fuzzDriver{}}, "test")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { a.Close() })

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("index.html")
	w.Write([]byte("hello"))
	zw.Close()
	sum := sha256.Sum256(buf.Bytes())
	digest = hex.EncodeToString(sum[:])
	if _, err := a.PutArtifact(context.Background(), digest, bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
		f.Fatal(err)
	}
	return Handler(a, cfg.Token(), log), a, filepath.Join(dir, "data"), digest
}

// serveFuzz sends one request to h and returns the recorded answer.
func serveFuzz(t *testing.T, h http.Handler, method, path string, body []byte) *httptest.ResponseRecorder {
	t.Helper()
	req, err := http.NewRequest(method, "http://agent"+path, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// checkRefusal fails unless rec is a JSON error whose code is its status,
// with a one-line message.
func checkRefusal(t *testing.T, what string, rec *httptest.ResponseRecorder) {
	t.Helper()
	var e api.Error
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%s: %d %q: not a JSON error (%v)", what, rec.Code, rec.Body, err)
	}
	if ErrorStatusCode(e.Code) != rec.Code || e.Message == "" || strings.Contains(e.Message, "\n") {
		t.Fatalf("%s: %d with code %q, message %q: want the code of the status and one line", what, rec.Code, e.Code, e.Message)
	}
}

var stepNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]*$`)

// FuzzStep posts any step, to any instance, with any body. The agent
// never fails inside (500) and never panics; it refuses with a JSON error
// of the right status, or runs the step and streams events that end in
// its result or its error. Only a core or driver step of a configured
// instance runs: names with "/" or ".." never do.
func FuzzStep(f *testing.F) {
	h, a, _, digest := fuzzAgent(f)
	for _, seed := range []struct {
		instance, step, body string
	}{
		{"a1", "status", ``},
		{"a1", "stop", `{"run":"r1","build":{"tag":"jenkins-app-7"},"user":"kim"}`},
		{"a2", "install", `{"args":{"artifact":{"sha256":"` + digest + `","name":"app.war"}},"run":"r2"}`},
		{"a1", "install", `{"args":{"artifact":{"sha256":"` + strings.Repeat("0", 64) + `","url":"file:///etc/passwd"}}}`},
		{"a1", "install", `{"args":{"artifact":"` + digest + `"}}`},
		{"a1", "rollback", `{}`},
		{"a1", "health", `{"args":{"timeout":"20ms"}}`},
		{"a1", "health", `{"args":{"timeout":1e300}}`},
		{"a1", "health", `{"args":{"timeout":[1]}}`},
		{"a1", "logs", `{"args":{"lines":1e300}}`},
		{"a1", "run", `{"args":{"command":"hello","who":"world"}}`},
		{"a1", "run", `{"args":{"command":"hello","who":"-rf"}}`},
		{"a1", "run", `{"args":{"command":"hello","who":{"x":1}}}`},
		{"a1", "ping", `{"args":{"x":[1,2]}}`},
		{"a1", "dance", ``},
		{"..", "stop", ``},
		{"a1", "..", ``},
		{"a1/../a2", "stop", ``},
		{"a9", "start", ``},
		{"a1", "start", `{"bogus":true}`},
		{"a1", "start", `{`},
		{"a1", "start", `{} {}`},
	} {
		f.Add(seed.instance, seed.step, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, instance, step string, body []byte) {
		path := api.StepPath("A", instance, step)
		rec := serveFuzz(t, h, http.MethodPost, path, body)
		what := "POST " + path + " " + string(body)
		// Each input starts afresh: the lease its run took is given back.
		var req api.StepRequest
		if json.Unmarshal(body, &req) == nil && req.Run != "" {
			a.ReleaseLease("A", req.Run)
		}
		configured := instance == "a1" || instance == "a2"
		runnable := configured && stepNameRE.MatchString(step) && len(step) <= 64
		// On a path that routes (no name empty or with "/"), a name the
		// agent cannot take (.., a dot, a space) is a bad request.
		routes := instance != "" && step != "" && !strings.Contains(instance+step, "/")
		bad := func(s string) bool { return !(stepNameRE.MatchString(s) && len(s) <= 64) }
		if routes && (bad(instance) || configured && bad(step)) && rec.Code != http.StatusBadRequest {
			t.Fatalf("%s: %d %q, want 400", what, rec.Code, rec.Body)
		}
		switch rec.Code {
		case http.StatusOK:
			if !runnable {
				t.Fatalf("%s: ran", what)
			}
			if ct := rec.Header().Get("Content-Type"); ct != api.ContentTypeEvents {
				t.Fatalf("%s: 200 with content type %q", what, ct)
			}
			_, err := api.ReadStep(bytes.NewReader(rec.Body.Bytes()), nil)
			var ae *api.Error
			if err != nil && (!errors.As(err, &ae) || ae.Code != api.CodeStepFailed || ae.Message == "") {
				t.Fatalf("%s: stream %q ends with %v, want a result or a step error", what, rec.Body, err)
			}
		case http.StatusBadRequest, http.StatusNotFound, http.StatusConflict, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
			checkRefusal(t, what, rec)
		default:
			t.Fatalf("%s: %d %q", what, rec.Code, rec.Body)
		}
	})
}

// FuzzArtifact asks for and uploads any digest with any body. Only a
// digest of 64 lower-case hex characters reaches the store, an upload is
// kept only under its own digest and only as a zip, nothing is left in
// the store's temp dir, and nothing is written outside the store.
func FuzzArtifact(f *testing.F) {
	h, _, dataDir, digest := fuzzAgent(f)
	store := filepath.Join(dataDir, "artifacts")
	for _, seed := range []struct {
		put    bool
		digest string
		body   []byte
	}{
		{false, digest, nil},
		{false, strings.Repeat("0", 64), nil},
		{true, strings.Repeat("0", 64), []byte("PK")},
		{true, digest, []byte("hello")},
		{false, "..", nil},
		{true, "../../token", []byte("x")},
		{true, strings.Repeat("A", 64), nil},
		{true, "", nil},
		{false, "%2e%2e", nil},
	} {
		f.Add(seed.put, seed.digest, seed.body)
	}
	before := tree(f, filepath.Dir(dataDir), store)
	f.Fuzz(func(t *testing.T, put bool, d string, body []byte) {
		method := http.MethodHead
		if put {
			method = http.MethodPut
		}
		path := api.ArtifactPath(d)
		rec := serveFuzz(t, h, method, path, body)
		what := method + " " + path
		valid := len(d) == 64 && strings.Trim(d, "0123456789abcdef") == ""
		switch {
		case rec.Code == http.StatusOK && !put, rec.Code == http.StatusCreated && put:
			if !valid {
				t.Fatalf("%s: %d for a digest that is not one", what, rec.Code)
			}
			if _, err := os.Stat(filepath.Join(store, "sha256", d)); err != nil {
				t.Fatalf("%s: %d but not stored: %v", what, rec.Code, err)
			}
		case rec.Code == http.StatusNotFound:
			if valid && put {
				t.Fatalf("%s: 404", what)
			}
		case rec.Code == http.StatusBadRequest:
			if valid {
				t.Fatalf("%s: 400 for a valid digest", what)
			}
		case put && (rec.Code == http.StatusRequestEntityTooLarge || rec.Code == http.StatusUnprocessableEntity):
			checkRefusal(t, what, rec)
		default:
			t.Fatalf("%s: %d %q", what, rec.Code, rec.Body)
		}
		if put && rec.Code != http.StatusCreated && rec.Code != http.StatusNotFound {
			checkRefusal(t, what, rec)
		}
		if left, _ := os.ReadDir(filepath.Join(store, "tmp")); len(left) > 0 {
			t.Fatalf("%s: left %v in the temp dir", what, left)
		}
		objects, _ := os.ReadDir(filepath.Join(store, "sha256"))
		for _, e := range objects {
			data, err := os.ReadFile(filepath.Join(store, "sha256", e.Name()))
			sum := sha256.Sum256(data)
			if err != nil || hex.EncodeToString(sum[:]) != e.Name() {
				t.Fatalf("%s: object %s does not hold what its name says (%v)", what, e.Name(), err)
			}
		}
		if after := tree(t, filepath.Dir(dataDir), store); !slices.Equal(after, before) {
			t.Fatalf("%s: files outside the store changed: %v, then %v", what, before, after)
		}
	})
}

// tree lists the files under root, but not those under skip.
func tree(t testing.TB, root, skip string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// FuzzRunEnd ends a run (PUT /v1/runs/:run) with any id and body. The
// agent never fails inside; it records the end of a run it journaled a
// step of, as the body says, with the error's first line only, and the
// history then shows that end; anything else is a JSON refusal.
func FuzzRunEnd(f *testing.F) {
	h, _, _, _ := fuzzAgent(f)
	if rec := serveFuzzStep(f, h, "r1"); rec.Code != http.StatusOK {
		f.Fatalf("start for run r1: %d %s", rec.Code, rec.Body)
	}
	for _, seed := range []struct{ run, body string }{
		{"r1", `{"outcome":"succeeded","exit_code":0,"template":"deploy","duration_ns":5,"counts":{"ok":2}}`},
		{"r1", `{"outcome":"failed","exit_code":1,"error":"boom\nstack","artifacts":[{"sha256":"x","name":"app.war"}]}`},
		{"r1", `{"outcome":"running"}`},
		{"r1", `{"exit_code":0}`},
		{"r1", `{"outcome":"x","started":"yesterday"}`},
		{"r9", `{"outcome":"succeeded"}`},
		{"..", `{"outcome":"succeeded"}`},
		{"r 1", `{"outcome":"succeeded"}`},
		{"r1", ``},
	} {
		f.Add(seed.run, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, run string, body []byte) {
		path := api.RunPath(run)
		rec := serveFuzz(t, h, http.MethodPut, path, body)
		what := "PUT " + path + " " + string(body)
		switch rec.Code {
		case http.StatusOK:
			// Decoded as the agent decodes a body: its first JSON value.
			var end api.RunEnd
			if err := json.NewDecoder(bytes.NewReader(body)).Decode(&end); err != nil || run != "r1" {
				t.Fatalf("%s: recorded (%v)", what, err)
			}
			var got api.Run
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatalf("%s: answer %q: %v", what, rec.Body, err)
			}
			if got.ID != run || got.Outcome != end.Outcome || got.ExitCode == nil || *got.ExitCode != end.ExitCode ||
				strings.Contains(got.Error, "\n") || !strings.HasPrefix(end.Error, got.Error) {
				t.Fatalf("%s: recorded as %+v", what, got)
			}
			hist := serveFuzz(t, h, http.MethodGet, api.HistoryPath(api.HistoryQuery{}), nil)
			var hs api.History
			if err := json.Unmarshal(hist.Body.Bytes(), &hs); err != nil || len(hs.Runs) != 1 || hs.Runs[0].Outcome != end.Outcome {
				t.Fatalf("%s: then history %d %q (%v)", what, hist.Code, hist.Body, err)
			}
		case http.StatusBadRequest, http.StatusNotFound:
			checkRefusal(t, what, rec)
		default:
			t.Fatalf("%s: %d %q", what, rec.Code, rec.Body)
		}
	})
}

// serveFuzzStep runs a start step of run on A/a1, which opens the run's
// record on the agent.
func serveFuzzStep(f *testing.F, h http.Handler, run string) *httptest.ResponseRecorder {
	req, _ := http.NewRequest(http.MethodPost, "http://agent"+api.StepPath("A", "a1", "start"), strings.NewReader(`{"run":"`+run+`"}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
