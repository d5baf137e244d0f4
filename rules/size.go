package rules

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
)

// Human sizes and rates, as used in the definition's member limits and in a
// host's config.toml. See docs/RULES.md#sizes-and-rates.

// maxSizeText bounds the text of one size or rate.
const maxSizeText = 64

// ErrSize is returned by ParseSize and ParseRate for text that is not a size or rate.
var ErrSize = errors.New("not a size")

var sizeUnits = map[string]int64{
	"":    1,
	"b":   1,
	"kb":  1e3,
	"mb":  1e6,
	"gb":  1e9,
	"tb":  1e12,
	"pb":  1e15,
	"eb":  1e18,
	"kib": 1 << 10,
	"mib": 1 << 20,
	"gib": 1 << 30,
	"tib": 1 << 40,
	"pib": 1 << 50,
	"eib": 1 << 60,
}

// binaryUnits and decimalUnits are tried in order by FormatSize.
var (
	binaryUnits  = []string{"EiB", "PiB", "TiB", "GiB", "MiB", "KiB"}
	decimalUnits = []string{"EB", "PB", "TB", "GB", "MB", "kB"}
)

// ParseSize parses a human size such as "50GiB", "1.5GB", "16 MiB" or "1024"
// into bytes. Units are case-insensitive: B, kB, MB, GB, TB, PB, EB (powers of
// 1000) and KiB, MiB, GiB, TiB, PiB, EiB (powers of 1024); no unit means bytes.
// A fraction is allowed and rounded down to whole bytes. Negative values and
// values over math.MaxInt64 are refused.
func ParseSize(s string) (int64, error) {
	if len(s) > maxSizeText {
		return 0, fmt.Errorf("%w: %d characters is too long", ErrSize, len(s))
	}
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	mult, ok := sizeUnits[unit]
	if !ok {
		return 0, fmt.Errorf("%w: %q: unknown unit %q (use B, kB, MB, GB, TB, KiB, MiB, GiB, TiB, ...)", ErrSize, s, t[i:])
	}
	whole, frac, hasDot := strings.Cut(num, ".")
	if whole == "" || strings.Contains(frac, ".") || (hasDot && frac == "") {
		return 0, fmt.Errorf("%w: %q: expected a number then a unit, like 50GiB", ErrSize, s)
	}
	// value = (whole*10^len(frac) + frac) * mult / 10^len(frac), rounded down.
	scale := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(len(frac))), nil)
	v, _ := new(big.Int).SetString(whole+frac, 10)
	v.Mul(v, big.NewInt(mult))
	v.Quo(v, scale)
	if !v.IsInt64() {
		return 0, fmt.Errorf("%w: %q is larger than %d bytes", ErrSize, s, int64(math.MaxInt64))
	}
	return v.Int64(), nil
}

// ParseRate parses a human rate such as "16MiB/s" or "1.5MB/s" into bytes per
// second: a size as ParseSize takes it, followed by "/s".
func ParseRate(s string) (int64, error) {
	t := strings.TrimSpace(s)
	size, ok := strings.CutSuffix(t, "/s")
	if !ok {
		return 0, fmt.Errorf("%w: %q: a rate ends in /s, like 16MiB/s", ErrSize, s)
	}
	n, err := ParseSize(size)
	if err != nil {
		return 0, fmt.Errorf("rate %q: %w", s, err)
	}
	return n, nil
}

// FormatSize formats n bytes exactly, with the largest binary unit that
// divides it, else the largest decimal unit, else in bytes: 50GiB, 1500MB, 7B.
// ParseSize(FormatSize(n)) == n for every n >= 0.
func FormatSize(n int64) string {
	if n > 0 {
		for _, units := range [][]string{binaryUnits, decimalUnits} {
			for _, u := range units {
				m := sizeUnits[strings.ToLower(u)]
				if n%m == 0 {
					return fmt.Sprintf("%d%s", n/m, u)
				}
			}
		}
	}
	return fmt.Sprintf("%dB", n)
}

// FormatRate formats n bytes per second as FormatSize does, followed by "/s".
func FormatRate(n int64) string { return FormatSize(n) + "/s" }
