package engine

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzParamParse checks template params on any command-line value: a value
// a param accepts prints (as a report shows it) to text that parses back to
// the same value, so parse → format → parse is stable for every type.
func FuzzParamParse(f *testing.F) {
	war := filepath.Join(f.TempDir(), "app.war")
	if err := os.WriteFile(war, []byte("PK"), 0o644); err != nil {
		f.Fatal(err)
	}
	digest := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	for _, seed := range []struct {
		typ uint8
		raw string
	}{
		{0, "hello"}, {0, ""},
		{1, "42"}, {1, " 1.5 "}, {1, "-0"}, {1, "1e308"}, {1, "NaN"}, {1, "+Inf"}, {1, "0x1p-2"}, {1, "1_0"},
		{2, "true"}, {2, "F"}, {2, "yes"},
		{3, "30s"}, {3, "1h2m3.5s"}, {3, "-5m"}, {3, "9223372036854775807ns"}, {3, "0"}, {3, ".5us"},
		{4, war}, {4, "https://repo.example/app.war#sha256=" + digest}, {4, "http://x#sha256=" + digest + "00"}, {4, "/nonexistent"},
		{5, "a, b,,c"}, {5, ","}, {5, " x "},
	} {
		f.Add(seed.typ, seed.raw)
	}
	f.Fuzz(func(t *testing.T, typ uint8, raw string) {
		p := Param{Name: "p", Type: paramTypes[int(typ)%len(paramTypes)]}
		v, err := p.Parse(raw)
		if err != nil {
			return
		}
		text := formatValue(v)
		again, err := p.Parse(text)
		if err != nil {
			t.Fatalf("%s %q parsed to %#v, printed as %q, which does not parse: %v", p.Type, raw, v, text, err)
		}
		if !sameValue(v, again) {
			t.Fatalf("%s %q parsed to %#v, printed as %q, which parses to %#v", p.Type, raw, v, text, again)
		}
		if formatValue(again) != text {
			t.Fatalf("%s %q: printed %q, then %q", p.Type, raw, text, formatValue(again))
		}
	})
}

// sameValue is reflect.DeepEqual, but NaN equals NaN and -0 is not 0.
func sameValue(a, b any) bool {
	if x, ok := a.(float64); ok {
		y, ok := b.(float64)
		return ok && math.Float64bits(x) == math.Float64bits(y) || ok && math.IsNaN(x) && math.IsNaN(y)
	}
	return reflect.DeepEqual(a, b)
}
