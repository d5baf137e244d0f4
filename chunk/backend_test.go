package chunk

import (
	"testing"
)

func TestObjectNameRoundTrip(t *testing.T) {
	id := SumChunk([]byte("chunk"))
	name := ObjectName(ObjectChunk, id)
	kind, got, ok := ParseObjectName(name)
	if !ok || kind != ObjectChunk || got != id {
		t.Fatalf("ParseObjectName(%q) = %v %v %v", name, kind, got, ok)
	}
	for _, bad := range []string{
		"", "chunks", "chunks/00", "manifests/" + name, "chunks/zz/" + id.String(),
		"pins/" + name[len("chunks/"):], // a chunk CID named as a pin
		"chunks/00/.tmp-123", "quarantine/" + id.String() + ".1",
	} {
		if _, _, ok := ParseObjectName(bad); ok {
			t.Errorf("ParseObjectName(%q) accepted", bad)
		}
	}
}

// FuzzParseObjectName: a name from a backend's listing is accepted only if
// it is exactly the name of the object it parses to.
func FuzzParseObjectName(f *testing.F) {
	id := SumChunk([]byte("chunk"))
	f.Add(ObjectName(ObjectChunk, id))
	f.Add(ObjectName(ObjectPin, id))
	f.Add("manifests/ab/bafy")
	f.Fuzz(func(t *testing.T, name string) {
		kind, id, ok := ParseObjectName(name)
		if ok && ObjectName(kind, id) != name {
			t.Fatalf("%q parsed to %v %s, whose name is %q", name, kind, id, ObjectName(kind, id))
		}
	})
}
