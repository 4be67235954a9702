#include "deploy/artifacts/bundle.h"

#include <cctype>
#include <set>

namespace ingot::deploy::artifacts {
namespace json = boost::json;

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::string Quoted(std::string_view s) {
  std::string out = "'";
  for (char c : s.substr(0, 120)) {
    unsigned char u = static_cast<unsigned char>(c);
    out += u < 0x20 || u == 0x7f ? '?' : c;
  }
  return out + (s.size() > 120 ? "...'" : "'");
}

template <typename F>
void ForEachLine(std::string_view text, F f) {
  size_t pos = 0;
  int line = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view l =
        text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    ++line;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (!f(line, l)) return;
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
  }
}

}  // namespace

std::string LastSegment(std::string_view uri) {
  size_t slash = uri.rfind('/');
  return std::string(slash == std::string_view::npos ? uri : uri.substr(slash + 1));
}

Result<BundleManifest> ParseManifest(std::string_view text) {
  if (text.size() > kMaxManifestBytes) return InvalidArgument("MANIFEST.MF is larger than 64 KiB");
  BundleManifest m;
  bool named = false;
  Status bad;
  ForEachLine(text, [&](int line, std::string_view l) {
    if (Trim(l).empty()) return true;
    size_t colon = l.find(':');
    if (colon == std::string_view::npos) {
      bad = InvalidArgument("MANIFEST.MF line " + std::to_string(line) + " is not 'Key:value'");
      return false;
    }
    std::string_view key = Trim(l.substr(0, colon)), value = Trim(l.substr(colon + 1));
    if (key == "Artifact Name") {
      m.name = std::string(value);
      named = true;
    } else if (key == "Description") {
      m.description = std::string(value);
    } else if (key == "Read Only") {
      m.read_only = value == "true" || value == "True" || value == "TRUE";
    } else if (key == "Time Stamp") {
      m.timestamp = std::string(value);
    } else if (key == "Artifact Type") {
      m.type = std::string(value);
    }
    return true;
  });
  if (!bad.ok()) return bad;
  if (!named || m.name.empty()) return InvalidArgument("MANIFEST.MF has no 'Artifact Name'");
  for (char c : m.name + m.description) {
    if (static_cast<unsigned char>(c) < 0x20)
      return InvalidArgument("MANIFEST.MF holds a control character");
  }
  return m;
}

std::string WriteManifest(const BundleManifest& m) {
  // Image Streamer's own layout: no newline after the last line.
  auto one_line = [](std::string s) {
    for (char& c : s) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    return s;
  };
  return "Artifact Name:" + one_line(m.name) + "\nDescription:" + one_line(m.description) +
         "\nRead Only:" + (m.read_only ? "true" : "false") +
         "\nTime Stamp:" + one_line(m.timestamp) +
         "\nArtifact Type:" + one_line(m.type.empty() ? "USER" : m.type);
}

const std::string* BundleSums::Find(std::string_view name) const {
  for (const auto& [n, h] : entries) {
    if (n == name) return &h;
  }
  return nullptr;
}

Status CheckEntryName(std::string_view name) {
  if (name.empty() || name.size() > 255)
    return InvalidArgument("an entry name is empty or longer than 255 bytes");
  if (name == "." || name == "..")
    return InvalidArgument("the entry name " + Quoted(name) + " is not a file name");
  if (name.front() == ' ' || name.back() == ' ') {
    return InvalidArgument("the entry name " + Quoted(name) + " starts or ends with a space");
  }
  for (char c : name) {
    unsigned char u = static_cast<unsigned char>(c);
    if (c == '/' || c == '\\') {
      return InvalidArgument("the entry name " + Quoted(name) +
                             " is a path: a bundle's entries are files at its top level");
    }
    if (u < 0x20 || u == 0x7f)
      return InvalidArgument("the entry name " + Quoted(name) + " holds a control character");
  }
  return Status::Ok();
}

Result<BundleSums> ParseSums(std::string_view text) {
  if (text.size() > kMaxSumsBytes)
    return InvalidArgument("SHA256SUM.sha256sum is larger than 4 MiB");
  BundleSums sums;
  std::set<std::string, std::less<>> seen;
  Status bad;
  ForEachLine(text, [&](int line, std::string_view l) {
    if (Trim(l).empty()) return true;
    auto fail = [&](const std::string& why) {
      bad = InvalidArgument("SHA256SUM.sha256sum line " + std::to_string(line) + ": " + why);
      return false;
    };
    // "<name>\t<hex>" as Image Streamer writes; "<hex>  <name>" (sha256sum(1)) is taken too.
    std::string name, hex;
    size_t tab = l.rfind('\t');
    if (tab != std::string_view::npos) {
      name = std::string(l.substr(0, tab));
      hex = std::string(Trim(l.substr(tab + 1)));
    } else if (l.size() > 66 && (l.substr(64, 2) == "  " || l.substr(64, 2) == " *")) {
      hex = std::string(l.substr(0, 64));
      name = std::string(l.substr(66));
    } else {
      return fail("not '<entry>\\t<sha256>'");
    }
    if (hex.size() != 64) return fail("the checksum is not 64 hexadecimal digits");
    for (char& c : hex) {
      if (!std::isxdigit(static_cast<unsigned char>(c)))
        return fail("the checksum is not hexadecimal");
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    if (Status s = CheckEntryName(name); !s.ok()) return fail(s.message());
    if (name == kSumsEntry) return fail("SHA256SUM.sha256sum lists itself");
    if (!seen.insert(name).second) return fail(Quoted(name) + " is listed twice");
    if (sums.entries.size() >= kMaxBundleEntries) return fail("more than 10000 entries");
    sums.entries.emplace_back(std::move(name), std::move(hex));
    return true;
  });
  if (!bad.ok()) return bad;
  return sums;
}

std::string WriteSums(const BundleSums& sums) {
  std::string out;
  for (const auto& [n, h] : sums.entries) out += n + "\t" + h + "\n";
  return out;
}

std::string_view EntrySuffix(EntryKind kind) {
  switch (kind) {
    case EntryKind::kPlanScript:
      return "_planscript.json";
    case EntryKind::kBuildPlan:
      return "_buildplan.json";
    case EntryKind::kDeploymentPlan:
      return "_deploymentplan.json";
    case EntryKind::kGoldenImage:
      return "_goldenimage.json";
    default:
      return "";
  }
}

EntryKind ClassifyEntry(std::string_view name) {
  if (name == kManifestEntry) return EntryKind::kManifest;
  if (name == kSumsEntry) return EntryKind::kSums;
  for (EntryKind k : {EntryKind::kPlanScript, EntryKind::kBuildPlan, EntryKind::kDeploymentPlan,
                      EntryKind::kGoldenImage}) {
    std::string_view suffix = EntrySuffix(k);
    if (name.size() > suffix.size() && name.ends_with(suffix)) return k;
  }
  return EntryKind::kPayload;
}

Result<json::object> ParseDocument(std::string_view entry, std::string_view text) {
  if (text.size() > kMaxDocumentBytes)
    return InvalidArgument(Quoted(entry) + " is larger than 8 MiB");
  boost::system::error_code ec;
  json::parse_options opts;
  opts.max_depth = 32;
  json::value v = json::parse(text, ec, {}, opts);
  if (ec || !v.is_object()) return InvalidArgument(Quoted(entry) + " is not a JSON object");
  json::object& o = v.as_object();
  const json::value* n = o.if_contains("name");
  if (n == nullptr || !n->is_string() || n->as_string().empty()) {
    return InvalidArgument(Quoted(entry) + " has no name");
  }
  return std::move(o);
}

Result<BundleContents> ParseBundle(const BundleIndex& index) {
  if (index.names.size() > kMaxBundleEntries)
    return InvalidArgument("the bundle has more than 10000 entries");
  std::set<std::string, std::less<>> names;
  for (const std::string& n : index.names) {
    INGOT_RETURN_IF_ERROR(CheckEntryName(n));
    if (!names.insert(n).second) return InvalidArgument("the bundle holds " + Quoted(n) + " twice");
  }
  auto text_of = [&](std::string_view n) -> const std::string* {
    auto it = index.texts.find(std::string(n));
    return it == index.texts.end() ? nullptr : &it->second;
  };
  if (!names.count(kManifestEntry) || text_of(kManifestEntry) == nullptr) {
    return InvalidArgument("the bundle has no MANIFEST.MF");
  }
  if (!names.count(kSumsEntry) || text_of(kSumsEntry) == nullptr) {
    return InvalidArgument("the bundle has no SHA256SUM.sha256sum");
  }
  BundleContents out;
  INGOT_ASSIGN_OR_RETURN(out.manifest, ParseManifest(*text_of(kManifestEntry)));
  INGOT_ASSIGN_OR_RETURN(BundleSums sums, ParseSums(*text_of(kSumsEntry)));
  // The same names on both sides: nothing unlisted, nothing missing.
  for (const std::string& n : index.names) {
    if (n != kSumsEntry && sums.Find(n) == nullptr) {
      return InvalidArgument("the entry " + Quoted(n) + " is not listed in SHA256SUM.sha256sum");
    }
  }
  for (const auto& [n, h] : sums.entries) {
    if (!names.count(n))
      return InvalidArgument("SHA256SUM.sha256sum lists " + Quoted(n) + ", which the bundle lacks");
  }
  std::vector<std::string> payloads;
  for (const std::string& n : index.names) {
    EntryKind kind = ClassifyEntry(n);
    if (kind == EntryKind::kManifest || kind == EntryKind::kSums) continue;
    if (kind == EntryKind::kPayload) {
      payloads.push_back(n);
      continue;
    }
    const std::string* text = text_of(n);
    if (text == nullptr) return InvalidArgument(Quoted(n) + " was not read");
    INGOT_ASSIGN_OR_RETURN(json::object doc, ParseDocument(n, *text));
    auto& list = kind == EntryKind::kPlanScript       ? out.plan_scripts
                 : kind == EntryKind::kBuildPlan      ? out.build_plans
                 : kind == EntryKind::kDeploymentPlan ? out.deployment_plans
                                                      : out.golden_images;
    list.emplace_back(n, std::move(doc));
  }
  // Names unique per kind.
  for (const auto* list :
       {&out.plan_scripts, &out.build_plans, &out.deployment_plans, &out.golden_images}) {
    std::set<std::string> seen;
    for (const auto& [entry, doc] : *list) {
      std::string name(doc.at("name").as_string());
      if (!seen.insert(name).second) {
        return InvalidArgument("two artifacts of the bundle are named " + Quoted(name));
      }
    }
  }
  // Every golden image has its payload, every payload its golden image.
  std::set<std::string> golden_names;
  for (const auto& [entry, doc] : out.golden_images) {
    std::string name(doc.at("name").as_string());
    if (!names.count(name)) {
      return InvalidArgument("the golden image " + Quoted(name) +
                             " has no payload entry of that name");
    }
    golden_names.insert(name);
    out.payloads[name] = name;
  }
  for (const std::string& p : payloads) {
    if (!golden_names.count(p)) {
      return InvalidArgument("the entry " + Quoted(p) +
                             " is neither an artifact document nor a golden image's payload");
    }
  }
  return out;
}

}  // namespace ingot::deploy::artifacts
