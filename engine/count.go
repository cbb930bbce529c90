package engine

import (
	"fmt"
	"strconv"
	"strings"
)

// Count is a batch size, a failure budget or a number of canaries, parsed: a whole number of
// instances ("2") or a percentage of a run's targets ("25%"). The zero Count
// is unset: the template's strategy, else the default, applies.
type Count struct {
	text    string  // as given, trimmed; "" when unset
	n       int     // the whole number, unless percent
	pct     float64 // the percentage, when percent
	percent bool
	min     int // the least the count may be: 1 for a batch, 0 for a budget or canaries
}

// defaultBatch is the batch of a template that declares none.
var defaultBatch = Count{text: "1", n: 1, min: 1}

// ParseBatch reads a batch size: a whole number >= 1, or a percentage of the
// targets, rounded up and at least 1.
func ParseBatch(s string) (Count, error) { return parseCount(s, 1) }

// ParseMaxFailures reads a failure budget: a whole number >= 0, or a
// percentage of the targets, rounded up.
func ParseMaxFailures(s string) (Count, error) { return parseCount(s, 0) }

// ParseCanary reads how many of the targets run first as canaries: a whole
// number >= 0, or a percentage of the targets, rounded up; 0 is none.
func ParseCanary(s string) (Count, error) { return parseCount(s, 0) }

func parseCount(s string, min int) (Count, error) {
	s = strings.TrimSpace(s)
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		p, err := strconv.ParseFloat(pct, 64)
		// NaN compares false with everything: only a p inside the range
		// passes.
		if err != nil || !(p >= 0 && p <= 100) {
			return Count{}, fmt.Errorf("%q is not a percentage between 0%% and 100%%", s)
		}
		return Count{text: s, pct: p, percent: true, min: min}, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min {
		return Count{}, fmt.Errorf("%q is not a whole number >= %d or a percentage like 25%%", s, min)
	}
	return Count{text: s, n: n, min: min}, nil
}

// String is the count as it was given ("2", "25%"); "" when unset.
func (c Count) String() string { return c.text }

// Of is the count for a run of total targets: the whole number, or the
// percentage of total rounded up (at least 1 for a batch above 0%).
func (c Count) Of(total int) int {
	if !c.percent {
		return c.n
	}
	n := int(float64(total)*c.pct/100 + 0.999999)
	return max(n, c.min)
}
