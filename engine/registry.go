package engine

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	"github.com/yuin/gopher-lua/ast"
	"github.com/yuin/gopher-lua/parse"

	"github.com/baepo/baepo/engine/luavalue"
)

// Source is one directory of templates. Dir is how messages name it (the
// path the user gave, or "flows-lua" for the built-ins).
type Source struct {
	Dir string
	FS  fs.FS
	// Builtin marks the built-in templates: flows.builtin(name) returns
	// them, whichever later source replaces the name. Load them first, so
	// that the others can build on them.
	Builtin bool
}

// Template is one registered flow template: its declarations, read once at
// start-up, and its compiled chunk, shared by every Lua state that runs it.
type Template struct {
	Name        string
	Description string
	File        string // as shown in messages: dir/name.lua
	Params      []Param
	Batch       Count // strategy.batch; unset: 1
	MaxFailures Count // strategy.max_failures; unset: 0
	Canary      Count // strategy.canary; unset: 0, no canaries
	HasTargets  bool
	HasRollback bool
	HasBefore   bool // before(ctx): once, before the first batch
	HasAfter    bool // after(ctx, summary): once, at the end of every run that started

	proto    *lua.FunctionProto
	lines    map[string]int       // line of each field of the returned table
	builtins map[string]*Template // what flows.builtin finds: the registry's
}

// Registry is the map of templates by name, built once at start-up.
type Registry struct {
	byName   map[string]*Template
	builtins map[string]*Template // the templates of Builtin sources, by name
}

// LoadError lists every template that failed to load, one "file:line:
// message" per problem.
type LoadError struct {
	Problems []string
}

func (e *LoadError) Error() string { return strings.Join(e.Problems, "\n") }

// LoadOptions are what [Load] needs besides the sources.
type LoadOptions struct {
	// Logger says which template replaced which; nil discards.
	Logger *slog.Logger
	// Reserved are the names a param cannot have, each with what holds it
	// ("a flag of `baepo run`"): params become flags next to the caller's
	// own.
	Reserved map[string]string
}

// Load compiles every *.lua file of every source, in order, and registers
// each under its declared name. A template in a later source replaces one of
// the same name from an earlier source, and the logger says so; two templates
// of the same name in one source are an error. All problems are collected
// into one *LoadError.
func Load(opts LoadOptions, sources ...Source) (*Registry, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Registry{byName: map[string]*Template{}, builtins: map[string]*Template{}}
	c := newCompiler(opts.Reserved, r.builtins)
	defer c.L.Close()
	var problems []string
	for _, src := range sources {
		files, err := fs.Glob(src.FS, "*.lua")
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", src.Dir, err))
			continue
		}
		seen := map[string]string{}
		for _, f := range files {
			file := path.Join(src.Dir, f)
			code, err := fs.ReadFile(src.FS, f)
			if err != nil {
				problems = append(problems, fmt.Sprintf("%s: %v", file, err))
				continue
			}
			t, errs := c.compile(file, code)
			if len(errs) > 0 {
				problems = append(problems, errs...)
				continue
			}
			if other, dup := seen[t.Name]; dup {
				problems = append(problems, fmt.Sprintf("%s:%d: template %q is also declared in %s (names must be unique within a directory)", file, t.line("name"), t.Name, other))
				continue
			}
			seen[t.Name] = file
			if old, ok := r.byName[t.Name]; ok {
				logger.Info("template replaced", "template", t.Name, "file", t.File, "replaces", old.File)
			}
			r.byName[t.Name] = t
			if src.Builtin {
				r.builtins[t.Name] = t
			}
		}
	}
	if len(problems) > 0 {
		return nil, &LoadError{Problems: problems}
	}
	return r, nil
}

// Get returns the template called name, or a [UsageError] that lists the
// known ones.
func (r *Registry) Get(name string) (*Template, error) {
	if t, ok := r.byName[name]; ok {
		return t, nil
	}
	return nil, usagef("unknown template %q (known: %s; see `baepo templates`)", name, strings.Join(r.Names(), ", "))
}

// Names returns the registered template names, sorted.
func (r *Registry) Names() []string {
	names := make([]string, 0, len(r.byName))
	for n := range r.byName {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Templates returns every template, sorted by name.
func (r *Registry) Templates() []*Template {
	out := make([]*Template, 0, len(r.byName))
	for _, n := range r.Names() {
		out = append(out, r.byName[n])
	}
	return out
}

func (t *Template) line(field string) int {
	if n, ok := t.lines[field]; ok {
		return n
	}
	return t.lines[""]
}

// compiler evaluates template chunks in one scratch sandbox to read their
// declarations.
type compiler struct {
	*sandbox
	reserved map[string]string    // param names the caller holds, see LoadOptions
	builtins map[string]*Template // the built-ins loaded so far, for flows.builtin
}

func newCompiler(reserved map[string]string, builtins map[string]*Template) *compiler {
	return &compiler{sandbox: newSandbox(builtins), reserved: reserved, builtins: builtins}
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// declTimeout bounds how long a template's top level may run at load time.
const declTimeout = 2 * time.Second

// The keys a template's table, its strategy and each of its params may
// have, sorted: any other key is a problem (a typo such as rollbak would
// otherwise disable what it misspells).
var (
	templateKeys = []string{"after", "before", "description", "each", "name", "params", "rollback", "strategy", "targets"}
	strategyKeys = []string{"batch", "canary", "max_failures"}
	paramKeys    = []string{"default", "doc", "required", "type", "values"}
)

// problems collects what is wrong with one template, each at the line of
// the field it is about.
type problems struct {
	t    *Template
	list []problem
}

type problem struct {
	line int
	msg  string
}

// add records a problem at the line of field ("params.wait.default").
func (p *problems) add(field, format string, args ...any) {
	p.list = append(p.list, problem{p.t.line(field), fmt.Sprintf(format, args...)})
}

// unknownKeys adds a problem for each key of tbl not in valid, at the line
// of field+key (field is "" or "strategy."). format takes the key and the
// valid keys.
func (p *problems) unknownKeys(tbl *lua.LTable, field, format string, valid []string) {
	var keys []lua.LValue
	tbl.ForEach(func(k, _ lua.LValue) {
		if s, ok := k.(lua.LString); !ok || !slices.Contains(valid, string(s)) {
			keys = append(keys, k)
		}
	})
	slices.SortFunc(keys, func(a, b lua.LValue) int { return strings.Compare(a.String(), b.String()) })
	for _, k := range keys {
		p.add(field+k.String(), format, luavalue.Describe(k), strings.Join(valid, ", "))
	}
}

// lines returns every problem as "file:line: message", in line order.
func (p *problems) lines() []string {
	slices.SortStableFunc(p.list, func(a, b problem) int { return a.line - b.line })
	out := make([]string, len(p.list))
	for i, pr := range p.list {
		out[i] = fmt.Sprintf("%s:%d: %s", p.t.File, pr.line, pr.msg)
	}
	return out
}

// compile compiles and evaluates one template and reads its declarations.
// It returns every problem it finds, not only the first; a template that
// does not compile or run has only that one.
func (c *compiler) compile(file string, code []byte) (*Template, []string) {
	proto, chunk, err := compileChunk(file, code)
	if err != nil {
		return nil, []string{err.Error()}
	}
	t := &Template{File: file, proto: proto, lines: fieldLines(chunk), builtins: c.builtins}
	L := c.L
	ctx, cancel := context.WithTimeout(context.Background(), declTimeout)
	defer cancel()
	L.SetContext(ctx)
	defer L.RemoveContext()
	decl, err := c.eval(proto)
	if err != nil {
		return nil, []string{err.Error()}
	}
	p := &problems{t: t}
	name, ok := decl.RawGetString("name").(lua.LString)
	if !ok || !nameRE.MatchString(string(name)) {
		p.add("name", "template must declare name = \"...\" (lower case letters, digits, - and _; got %s)", luavalue.Describe(decl.RawGetString("name")))
	}
	t.Name = string(name)
	p.unknownKeys(decl, "", "unknown key %s in the template (valid: %s)", templateKeys)
	if d := decl.RawGetString("description"); d != lua.LNil {
		s, ok := d.(lua.LString)
		if !ok {
			p.add("description", "description must be a string, got %s", luavalue.Describe(d))
		}
		t.Description = string(s)
	}
	if _, ok := decl.RawGetString("each").(*lua.LFunction); !ok {
		p.add("each", "template %q must declare each = function(i, ctx) ... end (got %s)", t.Name, luavalue.Describe(decl.RawGetString("each")))
	}
	for _, opt := range []struct {
		field string
		has   *bool
	}{{"targets", &t.HasTargets}, {"rollback", &t.HasRollback}, {"before", &t.HasBefore}, {"after", &t.HasAfter}} {
		switch v := decl.RawGetString(opt.field); v.(type) {
		case *lua.LFunction:
			*opt.has = true
		case *lua.LNilType:
		default:
			p.add(opt.field, "%s must be a function, got %s", opt.field, luavalue.Describe(v))
		}
	}
	params, _ := decl.RawGetString("params").(*lua.LTable)
	t.readParams(decl, c.reserved, p)
	t.readStrategy(decl, p)
	if !t.HasTargets && (params == nil || params.RawGetString("service") == lua.LNil) {
		p.add("", "template %q has no targets function and no service param: declare targets = function(ctx) ... end", t.Name)
	}
	if len(p.list) > 0 {
		return nil, p.lines()
	}
	return t, nil
}

func (t *Template) readParams(decl *lua.LTable, reserved map[string]string, p *problems) {
	raw := decl.RawGetString("params")
	if raw == lua.LNil {
		return
	}
	params, ok := raw.(*lua.LTable)
	if !ok {
		p.add("params", "params must be a table, got %s", luavalue.Describe(raw))
		return
	}
	var names []lua.LValue
	params.ForEach(func(k, _ lua.LValue) { names = append(names, k) })
	slices.SortFunc(names, func(a, b lua.LValue) int { return strings.Compare(a.String(), b.String()) })
	for _, k := range names {
		if param, ok := t.readParam(k, params.RawGet(k), reserved, p); ok {
			t.Params = append(t.Params, param)
		}
	}
}

// readParam reads the param declared as name = spec, and reports whether it
// had no problem.
func (t *Template) readParam(k, v lua.LValue, reserved map[string]string, p *problems) (Param, bool) {
	before := len(p.list)
	name, ok := k.(lua.LString)
	if !ok || !nameRE.MatchString(string(name)) {
		p.add("params", "param names must be lower-case identifiers, got %s", luavalue.Describe(k))
		return Param{}, false
	}
	field := "params." + string(name)
	if by, ok := reserved[string(name)]; ok {
		p.add(field, "param %s: the name is taken by %s (reserved: %s)", name, by, strings.Join(slices.Sorted(maps.Keys(reserved)), ", "))
	}
	spec, ok := v.(*lua.LTable)
	if !ok {
		p.add(field, "param %s must be a table { type = ..., doc = ... }, got %s", name, luavalue.Describe(v))
		return Param{}, false
	}
	p.unknownKeys(spec, field+".", "param "+string(name)+": unknown key %s (valid: %s)", paramKeys)
	param := Param{Name: string(name), Type: TypeString}
	for _, f := range []struct {
		key  string
		dst  *string
		want string
	}{{"type", &param.Type, "a string"}, {"doc", &param.Doc, "a string"}} {
		switch v := spec.RawGetString(f.key).(type) {
		case lua.LString:
			*f.dst = string(v)
		case *lua.LNilType:
		default:
			p.add(field+"."+f.key, "param %s: %s must be %s, got %s", name, f.key, f.want, luavalue.Describe(v))
		}
	}
	switch v := spec.RawGetString("required").(type) {
	case lua.LBool:
		param.Required = bool(v)
	case *lua.LNilType:
	default:
		p.add(field+".required", "param %s: required must be true or false, got %s", name, luavalue.Describe(v))
	}
	if !slices.Contains(paramTypes, param.Type) {
		p.add(field+".type", "param %s: unknown type %q (want one of %s)", name, param.Type, strings.Join(paramTypes, ", "))
		return Param{}, false
	}
	param.Values = t.readValues(field, string(name), param.Type, spec.RawGetString("values"), p)
	if param.Doc == "" {
		p.add(field, "param %s: add doc = \"...\" so `baepo run %s --help` can explain it", name, t.Name)
	}
	if d := spec.RawGetString("default"); d != lua.LNil {
		var err error
		switch {
		case param.Required:
			p.add(field+".default", "param %s is required and has a default: drop one", name)
		case param.Type == TypeArtifact:
			param.Default = lua.LVAsString(d) // parsed by ParseParams: checked when used, not at load
		default:
			if param.Default, err = param.Parse(luaScalar(d)); err != nil && len(param.Values) > 0 {
				p.add(field+".default", "param %s: default %s is not one of %s", name, luavalue.Describe(d), strings.Join(param.Values, ", "))
			} else if err != nil {
				p.add(field+".default", "param %s: default %s does not fit type %s", name, luavalue.Describe(d), param.Type)
			}
		}
	}
	return param, len(p.list) == before
}

// readValues reads a param's values = { "a", "b" }: the only values a
// string param takes.
func (t *Template) readValues(field, name, typ string, v lua.LValue, p *problems) []string {
	if v == lua.LNil {
		return nil
	}
	field += ".values"
	if typ != TypeString {
		p.add(field, "param %s: values is for string params, and this one is %s", name, typ)
		return nil
	}
	tbl, ok := v.(*lua.LTable)
	if !ok || tbl.Len() == 0 {
		p.add(field, "param %s: values must be a list of strings { \"a\", \"b\" }, got %s", name, luavalue.Describe(v))
		return nil
	}
	var values []string
	for i := 1; i <= tbl.Len(); i++ {
		s, ok := tbl.RawGetInt(i).(lua.LString)
		if !ok || slices.Contains(values, string(s)) {
			p.add(field, "param %s: values must be distinct strings, got %s at %d", name, luavalue.Describe(tbl.RawGetInt(i)), i)
			return nil
		}
		values = append(values, string(s))
	}
	return values
}

func (t *Template) readStrategy(decl *lua.LTable, p *problems) {
	raw := decl.RawGetString("strategy")
	if raw == lua.LNil {
		return
	}
	s, ok := raw.(*lua.LTable)
	if !ok {
		p.add("strategy", "strategy must be a table { canary = ..., batch = ..., max_failures = ... }, got %s", luavalue.Describe(raw))
		return
	}
	p.unknownKeys(s, "strategy.", "strategy: unknown key %s (valid: %s)", strategyKeys)
	for _, f := range []struct {
		key   string
		dst   *Count
		parse func(string) (Count, error)
	}{{"batch", &t.Batch, ParseBatch}, {"max_failures", &t.MaxFailures, ParseMaxFailures}, {"canary", &t.Canary, ParseCanary}} {
		v := s.RawGetString(f.key)
		if v == lua.LNil {
			continue
		}
		var err error
		if *f.dst, err = f.parse(luaScalar(v)); err != nil {
			p.add("strategy."+f.key, "strategy.%s: %v", f.key, err)
		}
	}
}

// luaScalar formats a Lua string, number or bool as its command-line text.
func luaScalar(v lua.LValue) string {
	if t, ok := v.(*lua.LTable); ok {
		var items []string
		for i := 1; i <= t.Len(); i++ {
			items = append(items, lua.LVAsString(t.RawGetInt(i)))
		}
		return strings.Join(items, ",")
	}
	return v.String()
}

// compileChunk parses and compiles a template. Errors read "file:line: message".
func compileChunk(file string, code []byte) (*lua.FunctionProto, []ast.Stmt, error) {
	chunk, err := parse.Parse(bytes.NewReader(code), file)
	if err != nil {
		var pe *parse.Error
		if errors.As(err, &pe) {
			msg := strings.TrimSpace(pe.Message)
			if pe.Pos.Line == parse.EOF {
				return nil, nil, fmt.Errorf("%s:%d: %s at end of file", file, bytes.Count(code, []byte("\n"))+1, msg)
			}
			return nil, nil, fmt.Errorf("%s:%d: %s near '%s'", file, pe.Pos.Line, msg, pe.Token)
		}
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	proto, err := lua.Compile(chunk, file)
	if err != nil {
		var ce *lua.CompileError
		if errors.As(err, &ce) {
			return nil, nil, fmt.Errorf("%s:%d: %s", file, ce.Line, ce.Message)
		}
		return nil, nil, fmt.Errorf("%s: %w", file, err)
	}
	return proto, chunk, nil
}

// luaError turns an error from PCall into "file:line: message", without the
// Lua stack trace.
func luaError(err error) error {
	var ae *lua.ApiError
	if errors.As(err, &ae) {
		if ae.Cause != nil {
			return ae.Cause
		}
		return errors.New(strings.TrimSpace(ae.Object.String()))
	}
	return err
}

// fieldLines maps each field of the table constructor a chunk returns to
// its line: "name", "params.service", "params.service.type". The key ""
// holds the line of the return statement.
func fieldLines(chunk []ast.Stmt) map[string]int {
	lines := map[string]int{"": 1}
	for i := len(chunk) - 1; i >= 0; i-- {
		ret, ok := chunk[i].(*ast.ReturnStmt)
		if !ok || len(ret.Exprs) != 1 {
			continue
		}
		lines[""] = ret.Line()
		if tbl, ok := ret.Exprs[0].(*ast.TableExpr); ok {
			walkFields(tbl, "", lines)
		}
		break
	}
	return lines
}

func walkFields(tbl *ast.TableExpr, prefix string, lines map[string]int) {
	item := 0
	for _, f := range tbl.Fields {
		var name string
		switch key := f.Key.(type) {
		case nil: // a list item: its key is its position, as in "1"
			item++
			name = prefix + strconv.Itoa(item)
		case *ast.StringExpr:
			name = prefix + key.Value
		default:
			continue
		}
		lines[name] = f.Value.Line()
		if sub, ok := f.Value.(*ast.TableExpr); ok {
			walkFields(sub, name+".", lines)
		}
	}
}
