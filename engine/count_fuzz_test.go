package engine

import (
	"strconv"
	"strings"
	"testing"
)

// FuzzParseCount checks the three count parsers (--batch, --max-failures,
// --canary) on any text: an accepted count reads back the same from its
// String, an accepted percentage lies between 0 and 100, and Of gives at
// least the minimum, at most every target for a percentage, and never
// fewer for more targets.
func FuzzParseCount(f *testing.F) {
	for _, s := range []string{"1", "2", " 3 ", "0", "-1", "25%", "100%", "0%", "0.5%", "101%", "-5%",
		"NaN", "Inf%", "1e400", "1e2%", "%", "", "99999999999999999999", "+7", "0x10", "1_000", "50 %"} {
		f.Add(s)
	}
	parsers := []struct {
		flag  string
		parse func(string) (Count, error)
		min   int
	}{
		{"--batch", ParseBatch, 1},
		{"--max-failures", ParseMaxFailures, 0},
		{"--canary", ParseCanary, 0},
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range parsers {
			c, err := p.parse(s)
			if err != nil {
				if !strings.Contains(err.Error(), strconv.Quote(strings.TrimSpace(s))) {
					t.Errorf("%s %q: error %q does not quote the value", p.flag, s, err)
				}
				continue
			}
			text := c.String()
			if text != strings.TrimSpace(s) {
				t.Fatalf("%s %q: String() = %q, want the value as given", p.flag, s, text)
			}
			again, err := p.parse(text)
			if err != nil || again.String() != text {
				t.Fatalf("%s %q: String() %q does not parse back: %v, %v", p.flag, s, text, again, err)
			}
			pct, percent := strings.CutSuffix(text, "%")
			if percent {
				v, err := strconv.ParseFloat(pct, 64)
				if err != nil || !(v >= 0 && v <= 100) {
					t.Fatalf("%s %q accepted: not a percentage between 0 and 100", p.flag, s)
				}
			}
			prev := 0
			for _, total := range []int{0, 1, 2, 3, 7, 10, 99, 100, 1000, 1 << 20} {
				n := c.Of(total)
				if again.Of(total) != n {
					t.Fatalf("%s %q: Of(%d) is %d, after a round trip %d", p.flag, s, total, n, again.Of(total))
				}
				if n < p.min {
					t.Fatalf("%s %q: Of(%d) = %d, below the minimum %d", p.flag, s, total, n, p.min)
				}
				if percent && n > max(total, p.min) {
					t.Fatalf("%s %q: Of(%d) = %d, more than the targets", p.flag, s, total, n)
				}
				if n < prev {
					t.Fatalf("%s %q: Of(%d) = %d, fewer than for fewer targets (%d)", p.flag, s, total, n, prev)
				}
				prev = n
			}
		}
	})
}
