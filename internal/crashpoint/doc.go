// Package crashpoint lets the crash-consistency tests kill a real agent
// at a chosen instant of a step, deterministically. It is for tests only:
// At does nothing unless the process runs with the environment variable
// BAEPO_TEST_CRASH_AT set to exactly the name of the point, which nothing
// but a test sets and no documentation offers.
package crashpoint
