package rules

import (
	"bytes"
	"fmt"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
)

// Sign clear-signs d with s and returns the document (docs/RULES.md#signatures).
// authority is the definition whose admins may sign d: nil for a genesis
// (then s must be an admin of d itself), else the current version, which d
// must succeed (same swarm, higher version) and of which s must be an admin.
// The result is verified before it is returned.
func (s *Signer) Sign(d *Definition, authority *Definition) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, err
	}
	keys := d
	if authority != nil {
		if err := authority.checkSuccessor(d); err != nil {
			return nil, err
		}
		keys = authority
	} else if d.Version != 1 {
		return nil, fmt.Errorf("%w: version %d needs the definition it follows to be signed", ErrInvalid, d.Version)
	}
	if _, ok := keys.Admin(s.Fingerprint()); !ok {
		return nil, fmt.Errorf("%w: key %s is not an admin of version %d", ErrNotAdmin, s.Fingerprint(), keys.Version)
	}
	var buf bytes.Buffer
	cfg := keyConfig
	cfg.Time = time.Now
	w, err := clearsign.Encode(&buf, s.key, &cfg)
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	if _, err := w.Write(d.Encode()); err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	buf.WriteByte('\n')
	signed := buf.Bytes()
	if authority == nil {
		_, err = Verify(signed)
	} else {
		_, err = authority.VerifyNext(signed)
	}
	if err != nil {
		return nil, fmt.Errorf("checking the signed document: %w", err)
	}
	return signed, nil
}
