//go:build !race

package chunk_test

// raceEnabled is true under -race, where the chunker is some 100 times
// slower; the large-data tests shrink their inputs by about four.
const raceEnabled = false
