package engine_test

import (
	"strings"
	"testing"

	"github.com/baepo/baepo/engine"
)

func TestCount(t *testing.T) {
	tests := []struct {
		name    string
		parse   func(string) (engine.Count, error)
		in      string
		of      map[int]int // total targets → count
		wantErr string
	}{
		{"batch number", engine.ParseBatch, "2", map[int]int{1: 2, 10: 2}, ""},
		{"batch percentage rounds up", engine.ParseBatch, "25%", map[int]int{1: 1, 4: 1, 5: 2, 10: 3}, ""},
		{"batch 0% is one", engine.ParseBatch, "0%", map[int]int{10: 1}, ""},
		{"batch spaces", engine.ParseBatch, " 3 ", map[int]int{10: 3}, ""},
		{"budget zero", engine.ParseMaxFailures, "0", map[int]int{10: 0}, ""},
		{"budget 0%", engine.ParseMaxFailures, "0%", map[int]int{10: 0}, ""},
		{"budget 100%", engine.ParseMaxFailures, "100%", map[int]int{7: 7}, ""},
		{"no canary", engine.ParseCanary, "0", map[int]int{10: 0}, ""},
		{"canary percentage rounds up", engine.ParseCanary, "10%", map[int]int{4: 1, 10: 1, 11: 2}, ""},

		{"batch zero", engine.ParseBatch, "0", nil, `"0" is not a whole number >= 1`},
		{"batch word", engine.ParseBatch, "abc", nil, `"abc" is not a whole number >= 1 or a percentage like 25%`},
		{"batch empty", engine.ParseBatch, "", nil, `"" is not a whole number`},
		{"budget negative", engine.ParseMaxFailures, "-1", nil, `"-1" is not a whole number >= 0`},
		{"canary negative", engine.ParseCanary, "-1", nil, `"-1" is not a whole number >= 0`},
		{"percentage above 100", engine.ParseMaxFailures, "150%", nil, `"150%" is not a percentage between 0% and 100%`},
		{"percentage word", engine.ParseBatch, "half%", nil, "not a percentage"},
		{"percentage NaN", engine.ParseBatch, "NaN%", nil, `"NaN%" is not a percentage between 0% and 100%`},
		{"budget percentage NaN", engine.ParseMaxFailures, "nan%", nil, `"nan%" is not a percentage between 0% and 100%`},
		{"canary percentage NaN", engine.ParseCanary, "NaN%", nil, `"NaN%" is not a percentage`},
		{"percentage Inf", engine.ParseBatch, "Inf%", nil, `"Inf%" is not a percentage between 0% and 100%`},
		{"percentage negative", engine.ParseBatch, "-5%", nil, `"-5%" is not a percentage between 0% and 100%`},
		{"number too large", engine.ParseBatch, "1e400", nil, `"1e400" is not a whole number >= 1`},
		{"number a float", engine.ParseMaxFailures, "1.5", nil, `"1.5" is not a whole number >= 0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.parse(tt.in)
			if checkError(t, err, tt.wantErr) {
				return
			}
			if c.String() != strings.TrimSpace(tt.in) {
				t.Errorf("String() = %q, want %q", c.String(), strings.TrimSpace(tt.in))
			}
			for total, want := range tt.of {
				if got := c.Of(total); got != want {
					t.Errorf("%q of %d = %d, want %d", tt.in, total, got, want)
				}
			}
		})
	}
}
