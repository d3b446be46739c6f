// Package doccheck has no API: its tests compile every Go block of
// README.md and of every .md file under docs/ from the file it is in, and build and run the
// README's programs, so that what users copy works (see doccheck_test.go
// for the convention a block follows).
package doccheck
