package luapattern

import (
	"context"
	"fmt"
)

// Limits of a pattern.
const (
	// MaxCaptures is how many captures a pattern may have.
	MaxCaptures = 200
	// MaxDepth is how deeply matching may nest: pattern items with a
	// quantifier, captures and back-references on one path.
	MaxDepth = 10000
	// checkEvery is how many matching steps run between two looks at the
	// context.
	checkEvery = 1024
)

// Error is a malformed pattern, or one too complex to match.
type Error struct{ Msg string }

func (e *Error) Error() string { return e.Msg }

func errorf(format string, args ...any) *Error { return &Error{fmt.Sprintf(format, args...)} }

// Pattern is a checked Lua pattern.
type Pattern struct {
	src      string // the pattern as given
	p        string // without the anchor
	anchored bool
	ncap     int // how many captures it has
}

// Compile checks pattern and returns it ready to match. A leading "^"
// anchors it (see Find).
func Compile(pattern string) (*Pattern, error) {
	pt := &Pattern{src: pattern, p: pattern}
	if len(pattern) > 0 && pattern[0] == '^' {
		pt.anchored, pt.p = true, pattern[1:]
	}
	n, err := check(pt.p)
	if err != nil {
		return nil, err
	}
	pt.ncap = n
	return pt, nil
}

// Anchored reports whether the pattern starts with "^": it matches only
// where a search starts.
func (pt *Pattern) Anchored() bool { return pt.anchored }

// String is the pattern as given to Compile.
func (pt *Pattern) String() string { return pt.src }

// Capture is one capture of a match: the bytes [Start, End) of the
// subject, or for a position capture "()" the position Start+1 (Lua's
// 1-based index).
type Capture struct {
	Start, End int
	Position   bool
}

// Match is a match of a pattern: the bytes [Start, End) of the subject and
// the captures, in the order their "(" appear.
type Match struct {
	Start, End int
	Captures   []Capture
}

// Find returns the first match that starts at init or later (only at init
// when the pattern is anchored), or nil. init is a 0-based byte offset;
// beyond the subject there is no match. It stops with ctx's error when ctx
// is done first.
//
// To go on after a match m, as string.gmatch and string.gsub do, search
// again from m.End, or from m.End+1 when the match was empty (m.End ==
// m.Start).
func (pt *Pattern) Find(ctx context.Context, s string, init int) (m *Match, err error) {
	if init < 0 || init > len(s) {
		return nil, nil
	}
	ms := &matchState{ctx: ctx, src: s, p: pt.p, capture: make([]capture, 0, pt.ncap)}
	defer func() {
		if v := recover(); v != nil {
			stop, ok := v.(stopped)
			if !ok {
				panic(v)
			}
			m, err = nil, stop.err
		}
	}()
	for start := init; start <= len(s); start++ {
		ms.capture = ms.capture[:0]
		if e := ms.match(start, 0); e >= 0 {
			m := &Match{Start: start, End: e, Captures: make([]Capture, len(ms.capture))}
			for i, c := range ms.capture {
				if c.len == capPosition {
					m.Captures[i] = Capture{Start: c.init, End: c.init, Position: true}
				} else {
					m.Captures[i] = Capture{Start: c.init, End: c.init + c.len}
				}
			}
			return m, nil
		}
		if pt.anchored {
			break
		}
	}
	return nil, nil
}

// Values are the match's values as string.match and string.gmatch return
// them: each capture (a string, or an int for a position capture), or the
// whole match when the pattern has no captures.
func (m *Match) Values(s string) []any {
	if len(m.Captures) == 0 {
		return []any{s[m.Start:m.End]}
	}
	out := make([]any, len(m.Captures))
	for i, c := range m.Captures {
		if c.Position {
			out[i] = c.Start + 1
		} else {
			out[i] = s[c.Start:c.End]
		}
	}
	return out
}

// Capture lengths that are not lengths.
const (
	capUnfinished = -1
	capPosition   = -2
)

type capture struct{ init, len int }

// stopped carries, as a panic out of the recursion, why matching stopped.
type stopped struct{ err error }

// matchState is lstrlib's MatchState: positions are byte offsets, -1 is
// NULL.
type matchState struct {
	ctx     context.Context
	src     string
	p       string
	capture []capture
	steps   int
	depth   int
}

func (ms *matchState) step() {
	ms.steps++
	if ms.steps%checkEvery == 0 && ms.ctx != nil {
		if err := ms.ctx.Err(); err != nil {
			panic(stopped{err})
		}
	}
}

// match matches the pattern from p against the subject from s and returns
// where the match ends, or -1.
func (ms *matchState) match(s, p int) int {
	ms.depth++
	if ms.depth > MaxDepth {
		panic(stopped{errorf("pattern too complex")})
	}
	defer func() { ms.depth-- }()
	for {
		ms.step()
		if p == len(ms.p) {
			return s
		}
		switch ms.p[p] {
		case '(':
			if p+1 < len(ms.p) && ms.p[p+1] == ')' {
				return ms.startCapture(s, p+2, capPosition)
			}
			return ms.startCapture(s, p+1, capUnfinished)
		case ')':
			return ms.endCapture(s, p+1)
		case '$':
			if p+1 == len(ms.p) {
				if s == len(ms.src) {
					return s
				}
				return -1
			}
		case '%':
			switch c := ms.p[p+1]; {
			case c == 'b':
				if s = ms.matchBalance(s, p+2); s < 0 {
					return -1
				}
				p += 4
				continue
			case c == 'f':
				p += 2
				ep := classEnd(ms.p, p)
				var prev, cur byte
				if s > 0 {
					prev = ms.src[s-1]
				}
				if s < len(ms.src) {
					cur = ms.src[s]
				}
				if matchBracketClass(prev, ms.p, p, ep-1) || !matchBracketClass(cur, ms.p, p, ep-1) {
					return -1
				}
				p = ep
				continue
			case isDigit(c):
				if s = ms.matchCapture(s, c); s < 0 {
					return -1
				}
				p += 2
				continue
			}
		}
		// A single-char class, maybe with a quantifier.
		ep := classEnd(ms.p, p)
		m := s < len(ms.src) && singleMatch(ms.src[s], ms.p, p, ep)
		if ep < len(ms.p) {
			switch ms.p[ep] {
			case '?':
				if m {
					if res := ms.match(s+1, ep+1); res >= 0 {
						return res
					}
				}
				p = ep + 1
				continue
			case '*':
				return ms.maxExpand(s, p, ep)
			case '+':
				if !m {
					return -1
				}
				return ms.maxExpand(s+1, p, ep)
			case '-':
				return ms.minExpand(s, p, ep)
			}
		}
		if !m {
			return -1
		}
		s, p = s+1, ep
	}
}

func (ms *matchState) maxExpand(s, p, ep int) int {
	i := 0
	for s+i < len(ms.src) && singleMatch(ms.src[s+i], ms.p, p, ep) {
		i++
	}
	for ; i >= 0; i-- {
		ms.step()
		if res := ms.match(s+i, ep+1); res >= 0 {
			return res
		}
	}
	return -1
}

func (ms *matchState) minExpand(s, p, ep int) int {
	for {
		ms.step()
		if res := ms.match(s, ep+1); res >= 0 {
			return res
		}
		if s < len(ms.src) && singleMatch(ms.src[s], ms.p, p, ep) {
			s++
		} else {
			return -1
		}
	}
}

func (ms *matchState) startCapture(s, p, what int) int {
	ms.capture = append(ms.capture, capture{init: s, len: what})
	res := ms.match(s, p)
	if res < 0 {
		ms.capture = ms.capture[:len(ms.capture)-1]
	}
	return res
}

func (ms *matchState) endCapture(s, p int) int {
	l := -1
	for i := len(ms.capture) - 1; i >= 0; i-- {
		if ms.capture[i].len == capUnfinished {
			l = i
			break
		}
	}
	if l < 0 { // check makes this unreachable
		panic(stopped{errorf("invalid pattern capture")})
	}
	ms.capture[l].len = s - ms.capture[l].init
	res := ms.match(s, p)
	if res < 0 {
		ms.capture[l].len = capUnfinished
	}
	return res
}

func (ms *matchState) matchBalance(s, p int) int {
	if s >= len(ms.src) || ms.src[s] != ms.p[p] {
		return -1
	}
	b, e, cont := ms.p[p], ms.p[p+1], 1
	for s++; s < len(ms.src); s++ {
		ms.step()
		switch ms.src[s] {
		case e:
			if cont--; cont == 0 {
				return s + 1
			}
		case b:
			cont++
		}
	}
	return -1
}

func (ms *matchState) matchCapture(s int, digit byte) int {
	l := int(digit - '1')
	if l < 0 || l >= len(ms.capture) || ms.capture[l].len == capUnfinished {
		panic(stopped{errorf("invalid capture index")}) // check makes this unreachable
	}
	c := ms.capture[l]
	if c.len == capPosition || len(ms.src)-s < c.len || ms.src[c.init:c.init+c.len] != ms.src[s:s+c.len] {
		return -1
	}
	return s + c.len
}

// classEnd returns where the single-char class at p ends. check has made
// sure it does.
func classEnd(pat string, p int) int {
	c := pat[p]
	p++
	switch c {
	case '%':
		return p + 1
	case '[':
		if p < len(pat) && pat[p] == '^' {
			p++
		}
		for { // look for a ']'; the first char of the set is never it
			c := pat[p]
			p++
			if c == '%' {
				p++
			}
			if pat[p] == ']' {
				return p + 1
			}
		}
	}
	return p
}

func singleMatch(c byte, pat string, p, ep int) bool {
	switch pat[p] {
	case '.':
		return true
	case '%':
		return matchClass(c, pat[p+1])
	case '[':
		return matchBracketClass(c, pat, p, ep-1)
	}
	return pat[p] == c
}

// matchBracketClass matches c against the set pat[p:ec+1], p at its '['
// and ec at its ']'.
func matchBracketClass(c byte, pat string, p, ec int) bool {
	sig := true
	if pat[p+1] == '^' {
		sig = false
		p++
	}
	for p++; p < ec; p++ {
		switch {
		case pat[p] == '%':
			p++
			if matchClass(c, pat[p]) {
				return sig
			}
		case pat[p+1] == '-' && p+2 < ec:
			p += 2
			if pat[p-2] <= c && c <= pat[p] {
				return sig
			}
		case pat[p] == c:
			return sig
		}
	}
	return !sig
}

func matchClass(c, cl byte) bool {
	var res bool
	switch cl | 0x20 {
	case 'a':
		res = isAlpha(c)
	case 'c':
		res = c < 0x20 || c == 0x7f
	case 'd':
		res = isDigit(c)
	case 'l':
		res = 'a' <= c && c <= 'z'
	case 'p':
		res = isPunct(c)
	case 's':
		res = c == ' ' || '\t' <= c && c <= '\r'
	case 'u':
		res = 'A' <= c && c <= 'Z'
	case 'w':
		res = isAlpha(c) || isDigit(c)
	case 'x':
		res = isDigit(c) || 'a' <= c|0x20 && c|0x20 <= 'f'
	case 'z':
		res = c == 0
	default:
		return cl == c
	}
	if 'A' <= cl && cl <= 'Z' {
		return !res
	}
	return res
}

func isAlpha(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isPunct(c byte) bool {
	return 0x21 <= c && c <= 0x7e && !isAlpha(c) && !isDigit(c)
}

// check walks pattern p (without its anchor) as matching would and
// returns how many captures it has, or the error Lua 5.1 raises when
// matching reaches a malformed part.
func check(p string) (int, error) {
	var open []int // the captures not closed yet
	ncap := 0
	for i := 0; i < len(p); {
		switch p[i] {
		case '(':
			if ncap++; ncap > MaxCaptures {
				return 0, errorf("too many captures (at most %d)", MaxCaptures)
			}
			if i+1 < len(p) && p[i+1] == ')' {
				i += 2
			} else {
				open = append(open, ncap-1)
				i++
			}
			continue
		case ')':
			if len(open) == 0 {
				return 0, errorf("invalid pattern capture")
			}
			open = open[:len(open)-1]
			i++
			continue
		case '$':
			if i+1 == len(p) {
				i++
				continue
			}
		case '%':
			if i+1 == len(p) {
				return 0, errorf("malformed pattern (ends with '%%')")
			}
			switch c := p[i+1]; {
			case c == 'b':
				if i+3 >= len(p) {
					return 0, errorf("unbalanced pattern")
				}
				i += 4
				continue
			case c == 'f':
				i += 2
				if i >= len(p) || p[i] != '[' {
					return 0, errorf("missing '[' after '%%f' in pattern")
				}
				ep, err := checkClassEnd(p, i)
				if err != nil {
					return 0, err
				}
				i = ep
				continue
			case isDigit(c):
				l := int(c) - '1'
				if l < 0 || l >= ncap || isOpen(open, l) {
					return 0, errorf("invalid capture index")
				}
				i += 2
				continue
			}
		}
		ep, err := checkClassEnd(p, i)
		if err != nil {
			return 0, err
		}
		i = ep
		if i < len(p) && (p[i] == '?' || p[i] == '*' || p[i] == '+' || p[i] == '-') {
			i++
		}
	}
	if len(open) > 0 {
		return 0, errorf("unfinished capture")
	}
	return ncap, nil
}

func isOpen(open []int, l int) bool {
	for _, o := range open {
		if o == l {
			return true
		}
	}
	return false
}

// checkClassEnd is classEnd with lstrlib's errors.
func checkClassEnd(p string, i int) (int, error) {
	c := p[i]
	i++
	switch c {
	case '%':
		if i >= len(p) {
			return 0, errorf("malformed pattern (ends with '%%')")
		}
		return i + 1, nil
	case '[':
		if i < len(p) && p[i] == '^' {
			i++
		}
		for {
			if i >= len(p) {
				return 0, errorf("malformed pattern (missing ']')")
			}
			c := p[i]
			i++
			if c == '%' && i < len(p) {
				i++
			}
			if i >= len(p) {
				return 0, errorf("malformed pattern (missing ']')")
			}
			if p[i] == ']' {
				return i + 1, nil
			}
		}
	}
	return i, nil
}
