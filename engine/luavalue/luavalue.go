package luavalue

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
)

// maxDataDepth is how deeply tables may nest in a value that FromLua
// converts.
const maxDataDepth = 64

// MaxItems is how many values (tables and what they hold) FromLua converts
// in one call: a flow's data for a step, a note or JSON is far smaller, and
// a copy of a table of millions would take the client's memory.
const MaxItems = 1 << 20

// maxExactInt is the largest integer a float64 (and so a Lua number) holds
// exactly; FromLua turns integral numbers up to it into int64.
const maxExactInt = 1 << 53

// ToLua converts a Go value, typically a param, a step's output or decoded
// JSON, into a Lua value. Slices become arrays (1-based), maps become tables,
// numbers become LNumber, a time.Duration becomes its string ("1m30s") and a
// Lua value stays as it is. Values of any other type become their fmt.Sprint
// string.
func ToLua(L *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case nil:
		return lua.LNil
	case lua.LValue:
		return v
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case int:
		return lua.LNumber(v)
	case int8:
		return lua.LNumber(v)
	case int16:
		return lua.LNumber(v)
	case int32:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case uint:
		return lua.LNumber(v)
	case uint8:
		return lua.LNumber(v)
	case uint16:
		return lua.LNumber(v)
	case uint32:
		return lua.LNumber(v)
	case uint64:
		return lua.LNumber(v)
	case float32:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case json.Number:
		if f, err := v.Float64(); err == nil {
			return lua.LNumber(f)
		}
		return lua.LString(v)
	case time.Duration:
		return lua.LString(v.String())
	case []any:
		t := L.CreateTable(len(v), 0)
		for i, item := range v {
			t.RawSetInt(i+1, ToLua(L, item))
		}
		return t
	case []string:
		t := L.CreateTable(len(v), 0)
		for i, item := range v {
			t.RawSetInt(i+1, lua.LString(item))
		}
		return t
	case []map[string]any:
		t := L.CreateTable(len(v), 0)
		for i, item := range v {
			t.RawSetInt(i+1, ToLua(L, item))
		}
		return t
	case map[string]any:
		t := L.CreateTable(0, len(v))
		for k, item := range v {
			t.RawSetString(k, ToLua(L, item))
		}
		return t
	case map[string]string:
		t := L.CreateTable(0, len(v))
		for k, item := range v {
			t.RawSetString(k, lua.LString(item))
		}
		return t
	}
	// Named numeric types (type Port uint16) are still numbers.
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return lua.LNumber(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return lua.LNumber(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return lua.LNumber(rv.Float())
	}
	return lua.LString(fmt.Sprint(v))
}

// FromLua converts a Lua value into plain Go data that encoding/json can
// marshal: nil, bool, string, int64 (an integral number within ±2^53),
// float64, []any (a table whose keys are exactly 1..n) or map[string]any (any
// other table; number keys are formatted, an empty table is an empty map).
//
// Functions, userdata, threads and channels cannot be converted, nor can
// tables that contain themselves, nest deeper than 64 levels or hold more
// than MaxItems values together; the error
// says where the value sits, as in `items[2].notify: cannot convert a
// function to data`.
func FromLua(v lua.LValue) (any, error) {
	c := converter{path: map[*lua.LTable]bool{}}
	out, err := c.value(v, 0)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// TableToMap converts an options table (i:health{timeout = "30s"}) into a
// map. A nil table gives a nil map; a list is an error, since options are
// named.
func TableToMap(t *lua.LTable) (map[string]any, error) {
	if t == nil {
		return nil, nil
	}
	v, err := FromLua(t)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errors.New("options must be named fields (key = value), not a list")
	}
	return m, nil
}

// Duration reads a duration argument: a number of seconds (fractions
// allowed, 0.25 is 250ms) or a Go duration string ("250ms", "1m30s").
// Negative durations are an error.
func Duration(v lua.LValue) (time.Duration, error) {
	switch v := v.(type) {
	case lua.LNumber:
		secs := float64(v)
		if math.IsNaN(secs) || secs < 0 || secs*float64(time.Second) >= math.MaxInt64 {
			return 0, fmt.Errorf("%v is not a duration in seconds (use a number >= 0 or a string like \"30s\")", v)
		}
		return time.Duration(secs * float64(time.Second)), nil
	case lua.LString:
		d, err := time.ParseDuration(strings.TrimSpace(string(v)))
		if err != nil || d < 0 {
			return 0, fmt.Errorf("%q is not a duration (use seconds or a string like \"30s\" or \"1m30s\")", string(v))
		}
		return d, nil
	}
	return 0, fmt.Errorf("duration expected (seconds or a string like \"30s\"), got %s", Describe(v))
}

// dataError is a value FromLua cannot convert and where it sits.
type dataError struct {
	path string // ".items[2].notify", built from the innermost value outwards
	msg  string
}

func (e *dataError) Error() string {
	if e.path == "" {
		return e.msg
	}
	return strings.TrimPrefix(e.path, ".") + ": " + e.msg
}

// converter walks a Lua value for FromLua.
type converter struct {
	path  map[*lua.LTable]bool // the tables enclosing the current value, to find cycles
	items int                  // values converted so far
}

func (c *converter) value(v lua.LValue, depth int) (any, error) {
	if c.items++; c.items > MaxItems {
		return nil, &dataError{msg: fmt.Sprintf("more than %d values: too much data to convert", MaxItems)}
	}
	switch v := v.(type) {
	case *lua.LNilType:
		return nil, nil
	case lua.LBool:
		return bool(v), nil
	case lua.LString:
		return string(v), nil
	case lua.LNumber:
		return number(v), nil
	case *lua.LTable:
		return c.table(v, depth+1)
	}
	return nil, &dataError{msg: fmt.Sprintf("cannot convert a %s to data", v.Type())}
}

// number is n as an int64 when it is integral and exact, else as a float64.
func number(n lua.LNumber) any {
	f := float64(n)
	if f == math.Trunc(f) && math.Abs(f) <= maxExactInt {
		return int64(f)
	}
	return f
}

func (c *converter) table(t *lua.LTable, depth int) (any, error) {
	if depth > maxDataDepth {
		return nil, &dataError{msg: fmt.Sprintf("tables nested deeper than %d levels", maxDataDepth)}
	}
	if c.path[t] {
		return nil, &dataError{msg: "table contains itself (a cycle cannot be converted to data)"}
	}
	c.path[t] = true
	defer delete(c.path, t)

	// A list has exactly the keys 1..n; anything else is a map.
	n, list := 0, true
	t.ForEach(func(k, _ lua.LValue) {
		n++
		if i, ok := k.(lua.LNumber); !ok || i < 1 || i != lua.LNumber(math.Trunc(float64(i))) {
			list = false
		}
	})
	if list && n > 0 && allIndexed(t, n) {
		out := make([]any, n)
		for i := range n {
			v, err := c.value(t.RawGetInt(i+1), depth)
			if err != nil {
				return nil, prefix(err, "["+strconv.Itoa(i+1)+"]")
			}
			out[i] = v
		}
		return out, nil
	}

	out := make(map[string]any, n)
	var err error
	t.ForEach(func(k, v lua.LValue) {
		if err != nil {
			return
		}
		var key string
		switch k := k.(type) {
		case lua.LString:
			key = string(k)
		case lua.LNumber:
			key = k.String()
		default:
			err = &dataError{msg: fmt.Sprintf("table key %s cannot be converted to data (use string keys)", Describe(k))}
			return
		}
		if _, dup := out[key]; dup {
			err = &dataError{msg: fmt.Sprintf("key %q is both a number and a string", key)}
			return
		}
		var item any
		if item, err = c.value(v, depth); err != nil {
			err = prefix(err, "."+key)
			return
		}
		out[key] = item
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// allIndexed reports whether t has a value at every index 1..n.
func allIndexed(t *lua.LTable, n int) bool {
	for i := 1; i <= n; i++ {
		if t.RawGetInt(i) == lua.LNil {
			return false
		}
	}
	return true
}

// prefix adds seg to the path of a dataError.
func prefix(err error, seg string) error {
	var de *dataError
	if errors.As(err, &de) {
		de.path = seg + de.path
	}
	return err
}

// Describe names a Lua value in an error message: a string quoted, a number
// or bool as itself, nil as "nothing", anything else by its type ("a
// table").
func Describe(v lua.LValue) string {
	switch v := v.(type) {
	case lua.LString:
		return fmt.Sprintf("%q", string(v))
	case *lua.LNilType:
		return "nothing"
	case lua.LNumber, lua.LBool:
		return v.String()
	default:
		return "a " + v.Type().String()
	}
}
