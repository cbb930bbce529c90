package luahttp_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/baepo/baepo/engine/internal/luatest"
	"github.com/baepo/baepo/engine/luahttp"
	"github.com/baepo/baepo/engine/luajson"
)

// httpTestServer serves the paths the http tests call, on loopback.
func httpTestServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Header().Add("X-Test", "a")
		w.Header().Add("X-Test", "b")
		io.WriteString(w, "hello")
	})
	// /echo answers with what it received, as JSON.
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"method":       r.Method,
			"content_type": r.Header.Get("Content-Type"),
			"user_agent":   r.Header.Get("User-Agent"),
			"token":        r.Header.Get("X-Token"),
			"body":         string(body),
			"valid_json":   json.Valid(body),
		})
	})
	mux.HandleFunc("GET /fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body) // the server notices a client gone only after the body
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, strings.Repeat("x", 2048))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestHTTP(t *testing.T) {
	srv := httpTestServer(t)
	tests := []struct {
		name      string
		mod       *luahttp.Module // nil: Timeout 5s, MaxBody 1 KiB
		code      string          // returns a value (checked with want) or nil, err
		want      any
		wantErr   string // in the second result
		wantRaise string
	}{
		{
			name: "get",
			code: `local res, err = http.get(base .. "/hello")
				if not res then return nil, err end
				return { status = res.status, body = res.body, ct = res.headers["Content-Type"], x = res.headers["X-Test"], truncated = res.truncated }`,
			want: map[string]any{"status": int64(200), "body": "hello", "ct": "text/plain", "x": "a"},
		},
		{
			name: "get sends User-Agent baepo",
			code: `local res, err = http.get(base .. "/echo")
				if not res then return nil, err end
				return json.decode(res.body).user_agent`,
			want: "baepo",
		},
		{
			name: "post table as JSON",
			code: `local res, err = http.post(base .. "/echo", { text = "deployed <A>", n = 2 })
				if not res then return nil, err end
				local e = json.decode(res.body)
				return { method = e.method, content_type = e.content_type, body = e.body, valid_json = e.valid_json }`,
			want: map[string]any{"method": "POST", "content_type": "application/json", "body": `{"n":2,"text":"deployed <A>"}`, "valid_json": true},
		},
		{
			name: "post string",
			code: `local res, err = http.post(base .. "/echo", "plain words")
				if not res then return nil, err end
				local e = json.decode(res.body)
				return { content_type = e.content_type, body = e.body }`,
			want: map[string]any{"content_type": "text/plain; charset=utf-8", "body": "plain words"},
		},
		{
			name: "post with content_type",
			code: `local res, err = http.post(base .. "/echo", "a=1", { content_type = "application/x-www-form-urlencoded", headers = { ["Content-Type"] = "text/csv" } })
				if not res then return nil, err end
				return json.decode(res.body).content_type`,
			want: "application/x-www-form-urlencoded",
		},
		{
			name: "headers",
			code: `local res, err = http.get(base .. "/echo", { headers = { ["X-Token"] = "s3cret", ["user-agent"] = "flow/1" } })
				if not res then return nil, err end
				local e = json.decode(res.body)
				return { token = e.token, user_agent = e.user_agent }`,
			want: map[string]any{"token": "s3cret", "user_agent": "flow/1"},
		},
		{
			name: "non-2xx is a response",
			code: `local res, err = http.get(base .. "/fail")
				if not res then return nil, err end
				return { status = res.status, body = res.body }`,
			want: map[string]any{"status": int64(500), "body": "boom\n"},
		},
		{
			name: "truncated body",
			code: `local res, err = http.get(base .. "/big")
				if not res then return nil, err end
				return { len = #res.body, truncated = res.truncated }`,
			want: map[string]any{"len": int64(1024), "truncated": true},
		},
		{
			name: "body within the default cap",
			mod:  &luahttp.Module{},
			code: `local res, err = http.get(base .. "/big")
				if not res then return nil, err end
				return { len = #res.body, truncated = res.truncated }`,
			want: map[string]any{"len": int64(2048)},
		},
		{
			name:    "timeout in seconds",
			code:    `return http.get(base .. "/slow", { timeout = 0.1 })`,
			wantErr: "timeout after 100ms",
		},
		{
			name:    "timeout as a string",
			code:    `return http.post(base .. "/slow", "x", { timeout = "100ms" })`,
			wantErr: "timeout after 100ms",
		},
		{
			name:    "module timeout",
			mod:     &luahttp.Module{Timeout: 100 * time.Millisecond},
			code:    `return http.get(base .. "/slow")`,
			wantErr: "timeout after 100ms",
		},
		{
			name:    "file scheme",
			code:    `return http.get("file:///etc/passwd")`,
			wantErr: `http.get file:///etc/passwd: scheme "file" not allowed`,
		},
		{
			name:    "no scheme",
			code:    `return http.get("example.invalid/hook")`,
			wantErr: "no scheme",
		},
		{
			name:    "bad URL",
			code:    `return http.get("http://[::1")`,
			wantErr: "http.get http://[::1: ",
		},
		{
			name:    "query is not shown",
			code:    `return http.get("gopher://127.0.0.1/x?token=s3cret")`,
			wantErr: `http.get gopher://127.0.0.1/x: scheme "gopher"`,
		},

		{name: "missing URL", code: `return http.get()`, wantRaise: "bad argument #1 to get"},
		{name: "missing body", code: `return http.post(base)`, wantRaise: "bad argument #2 to post"},
		{name: "bad body", code: `return http.post(base, 42)`, wantRaise: "body must be a string or a table, got 42"},
		{name: "function in body", code: `return http.post(base, { f = print })`, wantRaise: "body: f: cannot convert a function"},
		{name: "unknown option", code: `return http.get(base, { header = {} })`, wantRaise: `unknown option "header"`},
		{name: "content_type on get", code: `return http.get(base, { content_type = "x" })`, wantRaise: `unknown option "content_type"`},
		{name: "bad timeout", code: `return http.get(base, { timeout = "soon" })`, wantRaise: "timeout: \"soon\" is not a duration"},
		{name: "zero timeout", code: `return http.get(base, { timeout = 0 })`, wantRaise: "timeout: must be above 0"},
		{name: "bad header", code: `return http.get(base, { headers = { ["X-A"] = {} } })`, wantRaise: "headers:"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mod := tc.mod
			if mod == nil {
				mod = &luahttp.Module{Timeout: 5 * time.Second, MaxBody: 1024}
			}
			L := luatest.NewState(t, map[string]lua.LGFunction{"http": mod.Loader, "json": luajson.Module{}.Loader})
			L.SetGlobal("base", lua.LString(srv.URL))
			vals, err := luatest.Eval(L, tc.code)
			luatest.CheckValue(t, vals, err, tc.want, tc.wantErr, tc.wantRaise)
		})
	}
}

// TestHTTPCancel checks that cancelling the state's context, the run's
// interrupt, ends a request.
func TestHTTPCancel(t *testing.T) {
	started := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name   string
		cancel func(cancel context.CancelFunc) // when to cancel
	}{
		{"before the call", func(cancel context.CancelFunc) { cancel() }},
		{"in flight", func(cancel context.CancelFunc) {
			go func() {
				<-started
				cancel()
			}()
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			L := luatest.NewState(t, map[string]lua.LGFunction{"http": (&luahttp.Module{}).Loader})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tc.cancel(cancel)
			L.SetContext(ctx)
			defer L.RemoveContext()

			get := L.GetGlobal("http").(*lua.LTable).RawGetString("get")
			if err := L.CallByParam(lua.P{Fn: get, NRet: 2, Protect: true}, lua.LString(srv.URL)); err != nil {
				t.Fatal(err)
			}
			res, msg := L.Get(-2), L.Get(-1)
			L.Pop(2)
			if res != lua.LNil || !strings.Contains(msg.String(), "context canceled") {
				t.Errorf("got %v, %v; want nil and a message containing %q", res, msg, "context canceled")
			}
		})
	}
}

// TestHTTPDryRun checks that a dry run's module sends no POST, which may
// change something, and hands it to Plan instead; GET, which only reads,
// is sent.
func TestHTTPDryRun(t *testing.T) {
	var mu sync.Mutex
	var got []string // the requests the server received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path)
		mu.Unlock()
		io.WriteString(w, "read")
	}))
	t.Cleanup(srv.Close)

	tests := []struct {
		name    string
		code    string
		want    any
		wantErr string
		planned string // what Plan heard
		sent    string // what the server received
	}{
		{
			name:    "post is planned, not sent",
			code:    `return http.post(base .. "/hook?token=s3cret", { text = "deployed" }, { timeout = 5 })`,
			want:    map[string]any{"dry_run": true},
			planned: "POST " + srv.URL + "/hook",
		},
		{
			name:    "post of a string",
			code:    `return http.post(base .. "/hook", "deployed")`,
			want:    map[string]any{"dry_run": true},
			planned: "POST " + srv.URL + "/hook",
		},
		{
			name:    "a URL a real run could not send fails the same",
			code:    `return http.post("file:///etc/passwd", "x")`,
			wantErr: `http.post file:///etc/passwd: scheme "file" not allowed`,
		},
		{
			name: "get is sent",
			code: `local res, err = http.get(base .. "/status")
				if not res then return nil, err end
				return res.body`,
			want: "read",
			sent: "GET /status",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			got = nil
			mu.Unlock()
			var planned []string
			mod := &luahttp.Module{Plan: func(method, url string) { planned = append(planned, method+" "+url) }}
			L := luatest.NewState(t, map[string]lua.LGFunction{"http": mod.Loader})
			L.SetGlobal("base", lua.LString(srv.URL))
			vals, err := luatest.Eval(L, tc.code)
			luatest.CheckValue(t, vals, err, tc.want, tc.wantErr, "")
			if p := strings.Join(planned, "|"); p != tc.planned {
				t.Errorf("planned %q, want %q", p, tc.planned)
			}
			mu.Lock()
			defer mu.Unlock()
			if s := strings.Join(got, "|"); s != tc.sent {
				t.Errorf("the server received %q, want %q", s, tc.sent)
			}
		})
	}
}
