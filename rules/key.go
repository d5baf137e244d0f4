package rules

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// MaxKeyFileSize bounds a secret or public key file.
const MaxKeyFileSize = 256 << 10

// Signer is an admin's secret key, ready to sign.
type Signer struct {
	entity *openpgp.Entity
	key    *packet.PrivateKey // the signing key: primary or a signing subkey
}

// PassphraseFunc returns the passphrase of an encrypted secret key. It is
// only called when the key is encrypted.
type PassphraseFunc func() ([]byte, error)

// keyConfig makes Ed25519 (EdDSA, RFC 4880bis legacy form) keys, which GnuPG
// 2.2 reads, and SHA-256 signatures.
var keyConfig = packet.Config{
	Algorithm:   packet.PubKeyAlgoEdDSA,
	Curve:       packet.Curve25519,
	DefaultHash: crypto.SHA256,
}

// GenerateKey makes a new Ed25519 OpenPGP key with user ID name and returns
// its armored secret key. A non-empty passphrase encrypts the secret parts.
// The key does not expire.
func GenerateKey(name string, passphrase []byte) ([]byte, error) {
	if err := checkLabel(name); err != nil || name == "" {
		return nil, fmt.Errorf("key name %q: want 1 to 128 printable characters", name)
	}
	cfg := keyConfig
	e, err := openpgp.NewEntity(name, "annex-swarm admin", "", &cfg)
	if err != nil {
		return nil, fmt.Errorf("generating key: %w", err)
	}
	if len(passphrase) > 0 {
		if err := e.EncryptPrivateKeys(passphrase, &cfg); err != nil {
			return nil, fmt.Errorf("encrypting key: %w", err)
		}
	}
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PrivateKeyType, nil)
	if err != nil {
		return nil, fmt.Errorf("armoring key: %w", err)
	}
	if err := e.SerializePrivateWithoutSigning(w, &cfg); err != nil {
		return nil, fmt.Errorf("writing key: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("armoring key: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// ReadSigner reads an armored (or binary) OpenPGP secret key holding exactly
// one key, as GenerateKey writes it or `gpg --export-secret-keys --armor`
// exports it. If the key is encrypted, passphrase is called once.
func ReadSigner(r io.Reader, passphrase PassphraseFunc) (*Signer, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading secret key: %w", err)
	}
	if len(data) > MaxKeyFileSize {
		return nil, fmt.Errorf("%w: key file over %d bytes", ErrSecretKey, MaxKeyFileSize)
	}
	el, err := readKeys(data)
	if err != nil {
		return nil, err
	}
	if len(el) != 1 {
		return nil, fmt.Errorf("%w: key file holds %d keys, want 1", ErrSecretKey, len(el))
	}
	e := el[0]
	if e.PrivateKey == nil {
		return nil, fmt.Errorf("%w: key file holds a public key only; export the secret key", ErrSecretKey)
	}
	k, ok := e.SigningKey(time.Now())
	if !ok || k.PrivateKey == nil || k.PrivateKey.Dummy() {
		return nil, fmt.Errorf("%w: key %s has no usable signing key (expired, revoked or stub)", ErrSecretKey, fingerprint(e))
	}
	if k.PrivateKey.Encrypted {
		if passphrase == nil {
			return nil, fmt.Errorf("%w: key %s is protected by a passphrase and none was given", ErrSecretKey, fingerprint(e))
		}
		pw, err := passphrase()
		if err != nil {
			return nil, fmt.Errorf("reading passphrase: %w", err)
		}
		if err := k.PrivateKey.Decrypt(pw); err != nil {
			return nil, fmt.Errorf("%w: key %s: wrong passphrase (%v)", ErrSecretKey, fingerprint(e), err)
		}
	}
	return &Signer{entity: e, key: k.PrivateKey}, nil
}

// readKeys reads armored or binary key material.
func readKeys(data []byte) (openpgp.EntityList, error) {
	var body io.Reader = bytes.NewReader(data)
	if block, err := armor.Decode(bytes.NewReader(data)); err == nil {
		body = block.Body
	} else if !errors.Is(err, io.EOF) && bytes.Contains(data, []byte("-----BEGIN")) {
		return nil, fmt.Errorf("%w: bad armor: %v", ErrSecretKey, err)
	}
	el, err := openpgp.ReadKeyRing(body)
	if err != nil {
		return nil, fmt.Errorf("%w: reading key: %v", ErrSecretKey, err)
	}
	return el, nil
}

// Fingerprint returns the signer's primary fingerprint, upper-case hex.
func (s *Signer) Fingerprint() string { return fingerprint(s.entity) }

// Admin returns the admin entry for this key: its primary user ID as the
// name, its fingerprint, and its armored public key.
func (s *Signer) Admin() (Admin, error) { return adminFromEntity(s.entity) }

// ReadAdmin reads an admin entry from an armored public key, or from a
// secret key of which only the public part is used (for `admin add`).
func ReadAdmin(r io.Reader) (Admin, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxKeyFileSize+1))
	if err != nil {
		return Admin{}, fmt.Errorf("reading public key: %w", err)
	}
	if len(data) > MaxKeyFileSize {
		return Admin{}, fmt.Errorf("%w: key file over %d bytes", ErrInvalid, MaxKeyFileSize)
	}
	el, err := readKeys(data)
	if err != nil {
		return Admin{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if len(el) != 1 {
		return Admin{}, fmt.Errorf("%w: key file holds %d keys, want 1", ErrInvalid, len(el))
	}
	if _, ok := el[0].SigningKey(time.Now()); !ok {
		return Admin{}, fmt.Errorf("%w: key %s cannot sign (expired, revoked or no signing key)", ErrInvalid, fingerprint(el[0]))
	}
	return adminFromEntity(el[0])
}

// adminFromEntity writes the public part of e as an admin entry.
func adminFromEntity(e *openpgp.Entity) (Admin, error) {
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		return Admin{}, fmt.Errorf("armoring public key: %w", err)
	}
	if err := e.Serialize(w); err != nil {
		return Admin{}, fmt.Errorf("writing public key: %w", err)
	}
	if err := w.Close(); err != nil {
		return Admin{}, fmt.Errorf("armoring public key: %w", err)
	}
	name := ""
	if id := e.PrimaryIdentity(); id != nil && id.UserId != nil {
		name = id.UserId.Name
		if name == "" {
			name = id.UserId.Email
		}
	}
	if checkLabel(name) != nil {
		name = ""
	}
	a, _, err := parseAdmin(name, fingerprint(e), buf.String())
	return a, err
}

// PassphraseEnv is the environment variable that may hold the passphrase of
// an encrypted secret key.
const PassphraseEnv = "ANNEX_SWARM_PASSPHRASE"

// maxPassphraseFile bounds a passphrase file.
const maxPassphraseFile = 4 << 10

// NewPassphrase returns the PassphraseFunc of the authoring commands: the
// first line of file if file is not empty, else $ANNEX_SWARM_PASSPHRASE if
// set, else prompt (which asks on the terminal), else an error. Passphrases
// are never taken from a command-line value.
func NewPassphrase(file string, prompt PassphraseFunc) PassphraseFunc {
	return func() ([]byte, error) {
		if file != "" {
			f, err := os.Open(file)
			if err != nil {
				return nil, fmt.Errorf("opening passphrase file: %w", err)
			}
			defer f.Close()
			b, err := io.ReadAll(io.LimitReader(f, maxPassphraseFile))
			if err != nil {
				return nil, fmt.Errorf("reading passphrase file %s: %w", file, err)
			}
			line, _, _ := bytes.Cut(b, []byte("\n"))
			return bytes.TrimSuffix(line, []byte("\r")), nil
		}
		if pw, ok := os.LookupEnv(PassphraseEnv); ok {
			return []byte(pw), nil
		}
		if prompt != nil {
			return prompt()
		}
		return nil, fmt.Errorf("%w: the key is protected: set %s, use --passphrase-file, or run on a terminal", ErrSecretKey, PassphraseEnv)
	}
}
