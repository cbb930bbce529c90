package engine

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Param types a template may declare.
const (
	TypeString   = "string"
	TypeNumber   = "number"
	TypeBool     = "bool"
	TypeDuration = "duration"
	TypeArtifact = "artifact" // a local WAR/JAR path or an http(s) URL
	TypeList     = "list"     // comma separated on the command line, a Lua array in the flow
)

var paramTypes = []string{TypeString, TypeNumber, TypeBool, TypeDuration, TypeArtifact, TypeList}

// Param is one declared template parameter. It becomes a flag of `baepo run`.
type Param struct {
	Name     string
	Type     string
	Required bool
	Default  any // typed like a parsed value, but an artifact's is its text (checked when used); nil when there is none
	Doc      string
	// Values, when not empty, are the only values a string param takes
	// (values = { "hot", "restart" }): anything else is a usage error.
	Values []string
}

// Parse turns a command-line value into the param's Go value: string,
// float64, bool, time.Duration, [Artifact] or []string.
func (p Param) Parse(raw string) (any, error) {
	switch p.Type {
	case TypeString:
		if len(p.Values) > 0 && !slices.Contains(p.Values, raw) {
			return nil, fmt.Errorf("--%s: %q is not one of %s", p.Name, raw, strings.Join(p.Values, ", "))
		}
		return raw, nil
	case TypeNumber:
		n, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
		if err != nil || math.IsNaN(n) || math.IsInf(n, 0) {
			return nil, fmt.Errorf("--%s: %q is not a number", p.Name, raw)
		}
		return n, nil
	case TypeBool:
		b, err := strconv.ParseBool(strings.TrimSpace(raw))
		if err != nil {
			return nil, fmt.Errorf("--%s: %q is not a bool (use true or false)", p.Name, raw)
		}
		return b, nil
	case TypeDuration:
		d, err := time.ParseDuration(strings.TrimSpace(raw))
		if err != nil {
			return nil, fmt.Errorf("--%s: %q is not a duration (use e.g. 30s, 5m)", p.Name, raw)
		}
		return d, nil
	case TypeArtifact:
		a, err := ParseArtifact(raw)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", p.Name, err)
		}
		return a, nil
	case TypeList:
		var items []string
		for item := range strings.SplitSeq(raw, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		return items, nil
	}
	return nil, fmt.Errorf("--%s: unknown type %q", p.Name, p.Type)
}

// ParamNames are the template's param names as flags: "--service, --artifact".
func (t *Template) ParamNames() string {
	names := make([]string, len(t.Params))
	for i, p := range t.Params {
		names[i] = "--" + p.Name
	}
	if len(names) == 0 {
		return "(none)"
	}
	return strings.Join(names, ", ")
}

// Param returns the declared param called name.
func (t *Template) Param(name string) (Param, bool) {
	i := slices.IndexFunc(t.Params, func(p Param) bool { return p.Name == name })
	if i < 0 {
		return Param{}, false
	}
	return t.Params[i], true
}

// Params are the values of a template's params, made by
// [Template.ParseParams]: typed as their declarations say, defaults filled
// in. A run takes them as they are.
type Params struct {
	t      *Template
	values map[string]any
}

// ParseParams validates raw command-line values against the template's schema
// and fills defaults; an artifact's default is checked here, when a run uses
// it, not when the template is loaded. Unknown names, missing required
// params and values of the wrong type are a [UsageError] that lists the valid
// params.
func (t *Template) ParseParams(raw map[string]string) (Params, error) {
	values := make(map[string]any, len(t.Params))
	names := make([]string, 0, len(raw))
	for name := range raw {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		p, ok := t.Param(name)
		if !ok {
			return Params{}, usagef("%s: unknown param --%s (valid: %s)", t.Name, name, t.ParamNames())
		}
		v, err := p.Parse(raw[name])
		if err != nil {
			return Params{}, usagef("%s: %v", t.Name, err)
		}
		values[name] = v
	}
	for _, p := range t.Params {
		if _, ok := values[p.Name]; ok {
			continue
		}
		switch {
		case p.Required:
			return Params{}, usagef("%s: missing required param --%s (valid: %s)", t.Name, p.Name, t.ParamNames())
		case p.Type == TypeArtifact && p.Default != nil:
			v, err := p.Parse(p.Default.(string))
			if err != nil {
				return Params{}, usagef("%s: %v (the default in %s)", t.Name, err, t.File)
			}
			values[p.Name] = v
		case p.Default != nil:
			values[p.Name] = p.Default
		}
	}
	return Params{t: t, values: values}, nil
}

// artifacts are the artifact params' values, in declaration order.
func (p Params) artifacts() []Artifact {
	var out []Artifact
	for _, param := range p.t.Params {
		if a, ok := p.values[param.Name].(Artifact); ok {
			out = append(out, a)
		}
	}
	return out
}

// formatValue prints a parsed param value as a user would type it.
func formatValue(v any) string {
	switch v := v.(type) {
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case []string:
		return strings.Join(v, ",")
	default:
		return fmt.Sprint(v)
	}
}
