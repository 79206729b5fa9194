package opensearch

import (
	"bufio"
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// mappingFields returns every field of the template, with sub-fields as
// "name.sub".
func mappingFields(t *testing.T) map[string]bool {
	var tpl struct {
		Mappings struct {
			Properties map[string]struct {
				Fields map[string]any `json:"fields"`
			} `json:"properties"`
		} `json:"mappings"`
	}
	if err := json.Unmarshal(Template, &tpl); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for name, p := range tpl.Mappings.Properties {
		out[name] = true
		for sub := range p.Fields {
			out[name+"."+sub] = true
		}
	}
	return out
}

// kqlField finds field names in KQL: `name:` and `name >=`.
var kqlField = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_.]*)\s*(?::|[<>]=?)`)

func TestDashboardFieldsExistInMapping(t *testing.T) {
	fields := mappingFields(t)
	f, err := os.Open("../dashboards/stoa-mail.ndjson")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var refs []string
	kinds := map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var o struct {
			Type       string         `json:"type"`
			ID         string         `json:"id"`
			Attributes map[string]any `json:"attributes"`
		}
		if err := json.Unmarshal(sc.Bytes(), &o); err != nil {
			t.Fatalf("bad ndjson line: %v", err)
		}
		kinds[o.Type]++
		a := o.Attributes
		if s, ok := a["timeFieldName"].(string); ok {
			refs = append(refs, s)
		}
		if title, ok := a["title"].(string); ok && o.Type == "index-pattern" && title != (Config{}).ReadAlias() {
			t.Errorf("index pattern %q is not the read alias %q", title, Config{}.ReadAlias())
		}
		if cols, ok := a["columns"].([]any); ok {
			for _, c := range cols {
				refs = append(refs, c.(string))
			}
		}
		if sorts, ok := a["sort"].([]any); ok {
			for _, s := range sorts {
				refs = append(refs, s.([]any)[0].(string))
			}
		}
		if meta, ok := a["kibanaSavedObjectMeta"].(map[string]any); ok {
			var src struct {
				Query struct {
					Query string `json:"query"`
				} `json:"query"`
			}
			if err := json.Unmarshal([]byte(meta["searchSourceJSON"].(string)), &src); err != nil {
				t.Fatalf("%s: searchSourceJSON: %v", o.ID, err)
			}
			q := regexp.MustCompile(`"[^"]*"`).ReplaceAllString(src.Query.Query, `""`)
			for _, m := range kqlField.FindAllStringSubmatch(q, -1) {
				refs = append(refs, m[1])
			}
		}
		if vs, ok := a["visState"].(string); ok {
			var v struct {
				Aggs []struct {
					Params map[string]any `json:"params"`
				} `json:"aggs"`
			}
			if err := json.Unmarshal([]byte(vs), &v); err != nil {
				t.Fatalf("%s: visState: %v", o.ID, err)
			}
			for _, ag := range v.Aggs {
				if fld, ok := ag.Params["field"].(string); ok {
					refs = append(refs, fld)
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if kinds["index-pattern"] != 1 || kinds["search"] < 5 || kinds["dashboard"] != 1 || kinds["visualization"] == 0 {
		t.Errorf("objects by type: %v", kinds)
	}
	for _, r := range refs {
		if strings.HasPrefix(r, "_") {
			continue
		}
		if !fields[r] {
			t.Errorf("dashboards reference %q, which is not in the mapping", r)
		}
	}
	t.Logf("%d field references checked over %v", len(refs), kinds)
}
