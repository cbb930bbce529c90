package engine

import (
	"fmt"
	"strconv"
	"strings"
)

// parseCount reads a batch size or failure budget: a whole number ("2") or a
// percentage of total ("25%", rounded up, at least 1 when above 0%). It
// returns at least min.
func parseCount(s string, total, min int) (int, error) {
	s = strings.TrimSpace(s)
	if pct, ok := strings.CutSuffix(s, "%"); ok {
		p, err := strconv.ParseFloat(pct, 64)
		if err != nil || p < 0 || p > 100 {
			return 0, fmt.Errorf("%q is not a percentage between 0%% and 100%%", s)
		}
		n := int(float64(total)*p/100 + 0.999999)
		return max(n, min), nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < min {
		return 0, fmt.Errorf("%q is not a whole number >= %d or a percentage like 25%%", s, min)
	}
	return n, nil
}
