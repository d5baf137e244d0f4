package rules

import (
	"strconv"
	"testing"
)

// benchChain makes a v1 and a signed v2 with n members.
func benchChain(b *testing.B, n int) (*Signer, *Definition, *Definition, []byte) {
	s, _ := newSigner(b, "alice")
	v1, _ := genesis(b, s, "bench")
	next := v1.Next()
	for i := 0; i < n; i++ {
		if err := next.AddMember(newMember(b, "m"+strconv.Itoa(i), 4000+i)); err != nil {
			b.Fatal(err)
		}
	}
	signed, err := s.Sign(next, v1)
	if err != nil {
		b.Fatal(err)
	}
	return s, v1, next, signed
}

func BenchmarkVerifyNext(b *testing.B) {
	for _, n := range []int{4, 100} {
		b.Run(strconv.Itoa(n)+"members", func(b *testing.B) {
			_, v1, _, signed := benchChain(b, n)
			b.SetBytes(int64(len(signed)))
			for b.Loop() {
				if _, err := v1.VerifyNext(signed); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSign(b *testing.B) {
	s, v1, next, _ := benchChain(b, 4)
	for b.Loop() {
		if _, err := s.Sign(next, v1); err != nil {
			b.Fatal(err)
		}
	}
}
