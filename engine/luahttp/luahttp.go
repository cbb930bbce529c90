package luahttp

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/baepo/baepo/engine/luajson"
	"github.com/baepo/baepo/engine/luavalue"
)

// Defaults for Module.
const (
	defaultHTTPTimeout = 10 * time.Second
	defaultHTTPMaxBody = 1 << 20
)

// Module is the http module of a flow, meant for notifications (chat
// webhooks, status pages), not for reaching instances:
//
//	local res, err = http.post(url, { text = "deployed" }, { timeout = 5 })
//	if not res then log.warn("notify failed", "error", err) end
//	-- res.status, res.body, res.headers["Content-Type"], res.truncated
//
// Any response, whatever its status, is a result; a request that gets no
// response (bad URL, refused connection, timeout, interrupted run) returns nil
// and a message. Requests run under the state's context, so interrupting the
// run cancels them.
//
// In a dry run (Plan set) a request that may change something, http.post,
// is checked as it would be sent and handed to Plan instead; the flow gets
// { dry_run = true }. http.get is sent all the same: a GET only reads, and
// a flow may decide what to do on what it reads.
type Module struct {
	Client  *http.Client  // nil: http.DefaultClient
	Timeout time.Duration // per request unless the flow sets one; 0: 10s
	MaxBody int64         // response bytes kept, the rest is dropped; 0: 1 MiB
	// Plan, when set, makes the module a dry run's: it hears of each
	// request not sent, with its method and its URL as errors show it
	// (without password, query or fragment).
	Plan func(method, url string)
}

// Loader pushes the module's table. It is a lua.LGFunction that
// L.PreloadModule("http", m.Loader) registers for require; a state without
// require (the engine's sandbox) calls it and sets the table as a global.
func (m *Module) Loader(L *lua.LState) int {
	mod := L.NewTable()
	mod.RawSetString("get", L.NewFunction(m.get))
	mod.RawSetString("post", L.NewFunction(m.post))
	L.Push(mod)
	return 1
}

// request is one call of http.get or http.post.
type request struct {
	method  string
	url     string
	body    []byte // nil for GET
	ctype   string // the body's default Content-Type
	header  http.Header
	timeout time.Duration // 0: the module's
}

// get implements http.get(url [, opts]).
func (m *Module) get(L *lua.LState) int {
	r := request{method: http.MethodGet, url: L.CheckString(1), header: http.Header{}}
	readOptions(L, 2, &r)
	return m.do(L, r)
}

// post implements http.post(url, body [, opts]). A table body is sent as
// JSON, as json.encode writes it; a string is sent as is.
func (m *Module) post(L *lua.LState) int {
	r := request{method: http.MethodPost, url: L.CheckString(1), header: http.Header{}}
	switch body := L.CheckAny(2).(type) {
	case lua.LString:
		r.body, r.ctype = []byte(body), "text/plain; charset=utf-8"
	case *lua.LTable:
		b, err := luajson.Encode(body)
		if err != nil {
			L.ArgError(2, "body: "+err.Error())
		}
		r.body, r.ctype = b, "application/json"
	default:
		L.ArgError(2, "body must be a string or a table, got "+luavalue.Describe(body))
	}
	readOptions(L, 3, &r)
	return m.do(L, r)
}

// readOptions reads the optional options table at n into r: timeout,
// headers and, for POST, content_type. Unknown options and values of the
// wrong type raise an argument error.
func readOptions(L *lua.LState, n int, r *request) {
	opts := L.OptTable(n, nil)
	if opts == nil {
		return
	}
	valid := "timeout, headers"
	if r.method == http.MethodPost {
		valid += ", content_type"
	}
	var ctype string
	opts.ForEach(func(k, v lua.LValue) {
		key, _ := k.(lua.LString)
		switch {
		case key == "timeout":
			d, err := luavalue.Duration(v)
			if err == nil && d <= 0 {
				err = errors.New("must be above 0")
			}
			if err != nil {
				L.ArgError(n, "timeout: "+err.Error())
			}
			r.timeout = d
		case key == "headers":
			h, ok := v.(*lua.LTable)
			if !ok {
				L.ArgError(n, "headers must be a table of name = value, got "+luavalue.Describe(v))
			}
			h.ForEach(func(name, value lua.LValue) {
				if name.Type() != lua.LTString || !lua.LVCanConvToString(value) {
					L.ArgError(n, fmt.Sprintf("headers: %s = %s is not a string name and value", luavalue.Describe(name), luavalue.Describe(value)))
				}
				r.header.Set(string(name.(lua.LString)), lua.LVAsString(value))
			})
		case key == "content_type" && r.method == http.MethodPost:
			s, ok := v.(lua.LString)
			if !ok {
				L.ArgError(n, "content_type must be a string, got "+luavalue.Describe(v))
			}
			ctype = string(s)
		default:
			L.ArgError(n, fmt.Sprintf("unknown option %s (valid: %s)", luavalue.Describe(k), valid))
		}
	})
	if ctype != "" {
		r.header.Set("Content-Type", ctype)
	}
}

// do sends r and pushes the response table, or nil and a message. In a
// dry run, a request other than GET is planned instead.
func (m *Module) do(L *lua.LState, r request) int {
	if m.Plan != nil && r.method != http.MethodGet {
		return m.plan(L, r)
	}
	res, err := m.send(L.Context(), r)
	if err != nil {
		return pushError(L, r, err)
	}
	L.Push(res.table(L))
	return 1
}

// plan hands r to Plan instead of sending it and pushes { dry_run = true };
// a URL that could not be sent fails as it would in a real run.
func (m *Module) plan(L *lua.LState, r request) int {
	if _, err := parseURL(r.url); err != nil {
		return pushError(L, r, err)
	}
	m.Plan(r.method, displayURL(r.url))
	t := L.CreateTable(0, 1)
	t.RawSetString("dry_run", lua.LTrue)
	L.Push(t)
	return 1
}

// pushError pushes nil and the message of a request that failed.
func pushError(L *lua.LState, r request, err error) int {
	L.Push(lua.LNil)
	L.Push(lua.LString(fmt.Sprintf("http.%s %s: %v", strings.ToLower(r.method), displayURL(r.url), err)))
	return 2
}

// response is what a flow sees of a response.
type response struct {
	status    int
	body      []byte
	header    http.Header
	truncated bool
}

// table is res as a Lua table: status, body, headers (first value of each,
// canonical names like "Content-Type") and truncated when the body was cut.
func (res *response) table(L *lua.LState) *lua.LTable {
	headers := L.CreateTable(0, len(res.header))
	for name, values := range res.header {
		if len(values) > 0 {
			headers.RawSetString(name, lua.LString(values[0]))
		}
	}
	t := L.CreateTable(0, 4)
	t.RawSetString("status", lua.LNumber(res.status))
	t.RawSetString("body", lua.LString(res.body))
	t.RawSetString("headers", headers)
	if res.truncated {
		t.RawSetString("truncated", lua.LTrue)
	}
	return t
}

// send makes the request under ctx (nil means none) and the request's
// timeout, and reads at most MaxBody bytes of the response.
func (m *Module) send(ctx context.Context, r request) (*response, error) {
	u, err := parseURL(r.url)
	if err != nil {
		return nil, err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	timeout := cmp.Or(r.timeout, m.Timeout, defaultHTTPTimeout)
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, fmt.Errorf("timeout after %s", timeout))
	defer cancel()

	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return nil, unwrapURLError(err)
	}
	req.Header = r.header
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "baepo")
	}
	if r.body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", r.ctype)
	}

	resp, err := cmp.Or(m.Client, http.DefaultClient).Do(req)
	if err != nil {
		return nil, requestError(ctx, err)
	}
	defer resp.Body.Close()
	limit := cmp.Or(m.MaxBody, defaultHTTPMaxBody)
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read response (status %d): %w", resp.StatusCode, requestError(ctx, err))
	}
	res := &response{status: resp.StatusCode, body: b, header: resp.Header}
	if int64(len(b)) > limit {
		res.body, res.truncated = b[:limit], true
	}
	return res, nil
}

// parseURL parses the URL of a request: http or https only.
func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, unwrapURLError(err)
	}
	switch u.Scheme {
	case "http", "https":
		return u, nil
	case "":
		return nil, errors.New("no scheme (use an http:// or https:// URL)")
	default:
		return nil, fmt.Errorf("scheme %q not allowed (use http or https)", u.Scheme)
	}
}

// requestError says why a request failed: the context's cause when it ended
// (a timeout, an interrupted run), else the transport's error without the
// "Get \"url\":" that the caller already prints.
func requestError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return unwrapURLError(err)
}

func unwrapURLError(err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Err
	}
	return err
}

// displayURL is raw for error messages: without a password, query or
// fragment, which often carry secrets.
func displayURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = "", false, "", ""
	return u.Redacted()
}
