package engine

import (
	"fmt"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
)

// The sandbox's string.find, match, gmatch and gsub return what
// gopher-lua's do, where engine/luapattern's doc does not say otherwise.
func TestStringLibLikeGopherLua(t *testing.T) {
	ours := newSandbox(nil).L
	defer ours.Close()
	theirs := lua.NewState()
	defer theirs.Close()
	for _, code := range []string{
		`return string.find("hello world", "o w")`,
		`return string.find("hello world", "o", 6)`,
		`return string.find("hello world", "l+")`,
		`return string.find("hello", "l", -2)`,
		`return string.find("a.b", ".", 1, true)`,
		`return string.find("a.b", ".", 3, true)`,
		`return string.find("abc", "")`,
		`return string.find("k=v", "(%w+)=(%w+)")`,
		`return string.find("abc", "()b()")`,
		`return string.find("abc", "x")`,
		`return string.match("key = value", "(%w+)%s*=%s*(%w+)")`,
		`return string.match("2024-01-02", "%d+", 3)`,
		`return string.match("hello", ".-(l+)")`,
		`return string.match("hello", "^(h)(e)")`,
		`local out = {} for k, v in string.gmatch("a=1, b=2", "(%w+)=(%w+)") do out[#out+1] = k .. v end return table.concat(out, ",")`,
		`local out = {} for w in ("one two  three"):gmatch("%a+") do out[#out+1] = w end return table.concat(out, ",")`,
		`local out = {} for w in ("baaac"):gmatch("a*") do out[#out+1] = "[" .. w .. "]" end return table.concat(out)`,
		`return string.gsub("hello world", "o", "0")`,
		`return string.gsub("hello world", "(o)", "%1%1")`,
		`return string.gsub("hello", "", "-")`,
		`return string.gsub("baaac", "a*", "-")`,
		`return string.gsub("abc", "%w", "%0%0")`,
		`return string.gsub("abc", "b", "%%")`,
		`return string.gsub("hello world", "%w+", { hello = "HI", world = false })`,
		`return string.gsub("a b", "%w", function(c) return c:upper() end)`,
		`return string.gsub("a b", "%w", function(c) end)`,
		`return string.gsub("abc", "^a", "x")`,
		`return string.gsub("aaa", "a", "b", 2)`,
		`return ("x"):rep(3), string.format("%5.1f|%-3s|%d", 1.25, "a", 7), table.concat({ 1, "b", 3 }, "-")`,
	} {
		t.Run(code, func(t *testing.T) {
			want, wantErr := results(theirs, code)
			got, err := results(ours, code)
			if got != want || (err != nil) != (wantErr != nil) {
				t.Fatalf("got %s (%v), gopher-lua %s (%v)", got, err, want, wantErr)
			}
		})
	}
}

// results runs code and describes what it returns.
func results(L *lua.LState, code string) (string, error) {
	top := L.GetTop()
	defer L.SetTop(top)
	if err := L.DoString(code); err != nil {
		return "", err
	}
	var out []string
	for i := top + 1; i <= L.GetTop(); i++ {
		out = append(out, fmt.Sprintf("%s:%s", L.Get(i).Type(), L.Get(i)))
	}
	return strings.Join(out, " "), nil
}
