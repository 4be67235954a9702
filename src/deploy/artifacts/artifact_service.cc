#include "deploy/artifacts/artifact_service.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <utility>

#include "common/log.h"
#include "common/time.h"
#include "common/uuid.h"
#include "deploy/artifacts/attributes.h"
#include "deploy/artifacts/documents.h"
#include "formats/format.h"
#include "io/file.h"
#include "io/hash.h"

namespace ingot::deploy::artifacts {
namespace json = boost::json;

std::string_view CollectionUri(Kind kind) {
  switch (kind) {
    case Kind::kPlanScript: return "/rest/plan-scripts";
    case Kind::kBuildPlan: return "/rest/build-plans";
    case Kind::kGoldenImage: return "/rest/golden-images";
    case Kind::kDeploymentPlan: return "/rest/deployment-plans";
    case Kind::kOsVolume: return "/rest/os-volumes";
    case Kind::kTask: return "/rest/tasks";
    case Kind::kArtifactBundle: return "/rest/artifact-bundles";
    case Kind::kBackup: return "/rest/artifact-bundles/backups";
  }
  return "/rest";
}

namespace {

constexpr const char* kReadOnlyMessage = " is read-only";

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

Status CheckName(const json::object& body, std::string& name) {
  name = Str(body, "name");
  if (name.empty() || name.size() > 255) {
    return InvalidArgument("name is required (1-255 characters)");
  }
  for (char c : name) {
    if (static_cast<unsigned char>(c) < 0x20) return InvalidArgument("name holds a control character");
  }
  return Status::Ok();
}

bool ReadOnly(const json::object& doc) {
  return Flag(doc, "readOnly") || Flag(doc, "hpProvided");
}

std::string IdOf(std::string_view uri_or_id) {
  size_t slash = uri_or_id.rfind('/');
  return std::string(slash == std::string_view::npos ? uri_or_id : uri_or_id.substr(slash + 1));
}

std::string Names(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < 10; ++i) out += (i ? ", '" : "'") + names[i] + "'";
  if (names.size() > 10) out += " and " + std::to_string(names.size() - 10) + " more";
  return out;
}

// Lines of a text, for diffs.
std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    out.push_back(text.substr(pos, nl == std::string_view::npos ? nl : nl - pos));
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
  }
  return out;
}

// A unified-style line diff (LCS): " same", "-removed", "+added". Bounded: scripts are small, and a
// larger pair is refused rather than costing quadratic memory.
Result<std::string> LineDiff(std::string_view a, std::string_view b, int& added, int& removed) {
  auto la = Lines(a), lb = Lines(b);
  if (la.size() * lb.size() > 25'000'000) return InvalidArgument("the scripts are too large to compare");
  const size_t n = la.size(), m = lb.size();
  std::vector<uint32_t> lcs((n + 1) * (m + 1), 0);
  for (size_t i = n; i-- > 0;) {
    for (size_t j = m; j-- > 0;) {
      lcs[i * (m + 1) + j] = la[i] == lb[j] ? lcs[(i + 1) * (m + 1) + j + 1] + 1
                                            : std::max(lcs[(i + 1) * (m + 1) + j],
                                                       lcs[i * (m + 1) + j + 1]);
    }
  }
  std::string out;
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && la[i] == lb[j]) {
      out += " " + std::string(la[i]) + "\n";
      ++i, ++j;
    } else if (j < m && (i == n || lcs[i * (m + 1) + j + 1] >= lcs[(i + 1) * (m + 1) + j])) {
      out += "+" + std::string(lb[j]) + "\n";
      ++added, ++j;
    } else {
      out += "-" + std::string(la[i]) + "\n";
      ++removed, ++i;
    }
  }
  return out;
}

}  // namespace

ArtifactService::ArtifactService(DeployRepository& repo, VolumeStore& volumes,
                                 ArtifactOptions options, CatalogImageOpener catalog)
    : repo_(repo), volumes_(volumes), options_(std::move(options)), catalog_(std::move(catalog)) {}

ArtifactService::~ArtifactService() { Stop(); }

void ArtifactService::Start() {
  std::lock_guard<std::mutex> lock(mu_);
  if (worker_.joinable()) return;
  stop_ = false;
  worker_ = std::thread([this] { Work(); });
}

void ArtifactService::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (worker_.joinable()) worker_.join();
}

bool ArtifactService::Idle() {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.empty() && !running_job_;
}

Result<ArtifactService::RepairReport> ArtifactService::Repair() {
  RepairReport report;
  INGOT_RETURN_IF_ERROR(io::MakeDirs(options_.dir + "/golden"));
  INGOT_RETURN_IF_ERROR(io::MakeDirs(options_.dir + "/logs"));
  INGOT_RETURN_IF_ERROR(RepairCaptures(report));
  // Deployments a crash interrupted: undone.
  INGOT_ASSIGN_OR_RETURN(auto volumes, repo_.List(Kind::kOsVolume));
  for (json::object& v : volumes) {
    if (Str(v, "state") != "Deploying") continue;
    std::string name = Str(v, "name");
    Status s = volumes_.Delete(name);
    if (!s.ok() && s.code() != Code::kNotFound) return s;
    v["state"] = "Failed";
    v["status"] = "Critical";
    v["error"] = "the deployment was ended by a restart of ingotd; its clone was removed";
    v["modified"] = Now();
    std::vector<Record> put{{Kind::kOsVolume, Str(v, "id"), v}};
    auto task = repo_.Get(Kind::kTask, IdOf(Str(v, "taskUri")));
    if (task.ok()) {
      json::object& t = *task;
      t["taskState"] = "Error";
      t["percentComplete"] = 100;
      t["taskErrors"] = json::array{json::object{
          {"errorCode", "DEPLOYMENT_INTERRUPTED"},
          {"message", "The deployment was ended by a restart of the service; nothing of it is kept."},
          {"recommendedActions", json::array{"Delete the OS volume and deploy it again."}}}};
      Progress(t, "Ended by a restart; the clone was removed.");
      put.push_back({Kind::kTask, Str(t, "id"), t});
    }
    INGOT_RETURN_IF_ERROR(repo_.Put(put));
    log::Warn("deploy.repair", {{"volume", name}, {"undone", "true"}});
    ++report.deployments_undone;
  }
  // Tasks left unfinished without a volume (none should be; defensive).
  INGOT_ASSIGN_OR_RETURN(auto tasks, repo_.List(Kind::kTask));
  for (json::object& t : tasks) {
    std::string state = Str(t, "taskState");
    if (state != "Running" && state != "New") continue;
    t["taskState"] = "Error";
    Progress(t, "Ended by a restart.");
    INGOT_RETURN_IF_ERROR(repo_.Put({Kind::kTask, Str(t, "id"), t}));
  }
  // Golden image files without a record: an upload or copy a crash cut short.
  std::set<std::string> kept;
  INGOT_ASSIGN_OR_RETURN(auto images, repo_.List(Kind::kGoldenImage));
  for (const json::object& g : images) kept.insert(options_.dir + "/golden/" + Str(g, "_file"));
  kept.insert(options_.dir + "/golden/empty.raw");
  const std::string golden = options_.dir + "/golden";
  if (DIR* d = ::opendir(golden.c_str())) {
    std::vector<std::string> gone;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      if (!kept.count(golden + "/" + n)) gone.push_back(golden + "/" + n);
    }
    ::closedir(d);
    for (const std::string& p : gone) {
      INGOT_RETURN_IF_ERROR(RemoveFile(p));
      ++report.files_removed;
    }
  }
  return report;
}

Result<json::object> ArtifactService::Resolve(Kind kind, std::string_view uri_or_id) {
  if (uri_or_id.empty()) return InvalidArgument(std::string(CollectionUri(kind)) + ": a URI is required");
  std::string_view prefix = CollectionUri(kind);
  if (uri_or_id.find('/') != std::string_view::npos && !uri_or_id.starts_with(prefix)) {
    return InvalidArgument("'" + std::string(uri_or_id) + "' is not a URI under " +
                           std::string(prefix));
  }
  auto doc = repo_.Get(kind, IdOf(uri_or_id));
  if (!doc.ok() && doc.status().code() == Code::kNotFound) {
    return InvalidArgument("'" + std::string(uri_or_id) + "' names nothing under " +
                           std::string(prefix));
  }
  return doc;
}

Result<json::object> ArtifactService::Get(Kind kind, const std::string& id) {
  return repo_.Get(kind, id);
}

Result<std::vector<json::object>> ArtifactService::List(Kind kind) { return repo_.List(kind); }

// ---------------------------------------------------------------- plan scripts

Result<json::object> ArtifactService::CheckPlanScript(const json::object& body, json::object doc) {
  std::string name;
  INGOT_RETURN_IF_ERROR(CheckName(body, name));
  std::string type = Lower(Str(body, "planType", Str(doc, "planType", "general")));
  if (type != "deploy" && type != "capture" && type != "general") {
    return InvalidArgument("planType must be deploy, capture or general");
  }
  const json::value* content = body.if_contains("content");
  if (content != nullptr && !content->is_string()) return InvalidArgument("content must be a string");
  std::string text = content != nullptr ? std::string(content->as_string()) : Str(doc, "content");
  if (text.size() > (4 << 20)) return InvalidArgument("content is larger than 4 MiB");
  auto attrs = ScriptAttributes(text);
  if (!attrs.empty() && type != "deploy") {
    return InvalidArgument("only deploy plan scripts may hold custom attributes; this " + type +
                           " script uses @" + attrs.front().name + "@");
  }
  json::array custom;
  for (const ScriptAttribute& a : attrs) {
    json::object o{{"name", a.name}, {"value", a.default_value.value_or("")}};
    if (a.nic) o["type"] = "nic";
    custom.push_back(std::move(o));
  }
  doc["name"] = name;
  doc["description"] = Str(body, "description", Str(doc, "description"));
  doc["planType"] = type;
  doc["content"] = text;
  // Image Streamer shows them as JSON text.
  doc["customAttributes"] = json::serialize(custom);
  doc["hpProvided"] = Flag(body, "hpProvided", Flag(doc, "hpProvided"));
  doc["readOnly"] = Flag(body, "readOnly", Flag(doc, "readOnly")) || Flag(doc, "hpProvided");
  if (!doc.contains("dependentArtifacts")) doc["dependentArtifacts"] = json::array();
  return doc;
}

Result<json::object> ArtifactService::CreatePlanScript(const json::object& body) {
  std::lock_guard<std::mutex> lock(write_mu_);
  INGOT_ASSIGN_OR_RETURN(json::object doc, CheckPlanScript(body, {}));
  std::string id = NewUuid();
  Stamp(doc, Kind::kPlanScript, id, "PlanScriptV2", "plan-scripts");
  INGOT_RETURN_IF_ERROR(repo_.Put({Kind::kPlanScript, id, doc}));
  return doc;
}

Result<json::object> ArtifactService::UpdatePlanScript(const std::string& id,
                                                       const json::object& body, bool force) {
  std::lock_guard<std::mutex> lock(write_mu_);
  INGOT_ASSIGN_OR_RETURN(json::object old, repo_.Get(Kind::kPlanScript, id));
  if (ReadOnly(old) && !force) {
    return Conflict("plan script '" + Str(old, "name") + "'" + kReadOnlyMessage);
  }
  json::object merged = body;
  if (!merged.contains("name")) merged["name"] = old["name"];
  INGOT_ASSIGN_OR_RETURN(json::object doc, CheckPlanScript(merged, old));
  // A script in use must stay usable by its build plans.
  INGOT_ASSIGN_OR_RETURN(auto plans, repo_.List(Kind::kBuildPlan));
  for (const json::object& p : plans) {
    for (const json::value& s : p.at("buildStep").as_array()) {
      if (IdOf(Str(s.as_object(), "planScriptUri")) != id) continue;
      std::string bt = Str(p, "oeBuildPlanType");
      std::string st = Str(doc, "planType");
      if (st != "general" && st != bt) {
        return Conflict("plan script '" + Str(old, "name") + "' is used by the " + bt +
                        " build plan '" + Str(p, "name") + "' and cannot become a " + st +
                        " script");
      }
    }
  }
  Stamp(doc, Kind::kPlanScript, id, "PlanScriptV2", "plan-scripts");
  INGOT_RETURN_IF_ERROR(repo_.Put({Kind::kPlanScript, id, doc}));
  return doc;
}

Result<json::array> ArtifactService::PlanScriptUsedBy(const std::string& id) {
  INGOT_RETURN_IF_ERROR(repo_.Get(Kind::kPlanScript, id).status());
  INGOT_ASSIGN_OR_RETURN(auto plans, repo_.List(Kind::kBuildPlan));
  json::array out;
  for (const json::object& p : plans) {
    for (const json::value& s : p.at("buildStep").as_array()) {
      if (IdOf(Str(s.as_object(), "planScriptUri")) == id) {
        out.push_back(json::object{{"name", p.at("name")},
                                   {"uri", p.at("uri")},
                                   {"readOnly", ReadOnly(p)}});
        break;
      }
    }
  }
  return out;
}

Status ArtifactService::DeletePlanScript(const std::string& id, bool force) {
  std::lock_guard<std::mutex> lock(write_mu_);
  INGOT_ASSIGN_OR_RETURN(json::object doc, repo_.Get(Kind::kPlanScript, id));
  if (ReadOnly(doc) && !force) {
    return Conflict("plan script '" + Str(doc, "name") + "'" + kReadOnlyMessage +
                    " (DELETE with ?force=true removes it anyway)");
  }
  INGOT_ASSIGN_OR_RETURN(json::array users, PlanScriptUsedBy(id));
  if (!users.empty()) {
    std::vector<std::string> names;
    for (const json::value& u : users) names.emplace_back(u.as_object().at("name").as_string());
    return Conflict("plan script '" + Str(doc, "name") + "' is used by the build plan(s) " +
                    Names(names));
  }
  return repo_.Remove(Kind::kPlanScript, id);
}

Result<json::object> ArtifactService::CopyPlanScript(const std::string& id,
                                                     const std::string& name) {
  INGOT_ASSIGN_OR_RETURN(json::object src, repo_.Get(Kind::kPlanScript, id));
  json::object body{{"name", name.empty() ? "Copy of " + Str(src, "name") : name},
                    {"description", src["description"]},
                    {"planType", src["planType"]},
                    {"content", src["content"]},
                    {"hpProvided", false},
                    {"readOnly", false}};
  return CreatePlanScript(body);
}

Result<json::object> ArtifactService::PlanScriptDifferences(const std::string& id,
                                                            const json::value& body) {
  INGOT_ASSIGN_OR_RETURN(json::object doc, repo_.Get(Kind::kPlanScript, id));
  std::string other;
  json::object out;
  if (body.is_string()) {
    other = std::string(body.as_string());
  } else if (body.is_object() && body.as_object().contains("planScriptUri")) {
    INGOT_ASSIGN_OR_RETURN(json::object o,
                           Resolve(Kind::kPlanScript, Str(body.as_object(), "planScriptUri")));
    other = Str(o, "content");
    out["comparedTo"] = o["uri"];
  } else if (body.is_object() && body.as_object().contains("content")) {
    other = Str(body.as_object(), "content");
  } else {
    return InvalidArgument(
        "send the content to compare with (a JSON string, {\"content\": ...} or "
        "{\"planScriptUri\": ...})");
  }
  int added = 0, removed = 0;
  INGOT_ASSIGN_OR_RETURN(std::string diff, LineDiff(Str(doc, "content"), other, added, removed));
  out["originalContent"] = doc["content"];
  out["modifiedContent"] = other;
  out["differences"] = diff;
  out["linesAdded"] = added;
  out["linesRemoved"] = removed;
  out["identical"] = added == 0 && removed == 0;
  return out;
}

// ---------------------------------------------------------------- build plans

Result<json::object> ArtifactService::CheckBuildPlan(const json::object& body, json::object doc) {
  std::string name;
  INGOT_RETURN_IF_ERROR(CheckName(body, name));
  std::string type = Lower(Str(body, "oeBuildPlanType", Str(doc, "oeBuildPlanType")));
  if (type != "deploy" && type != "capture") {
    return InvalidArgument("oeBuildPlanType must be deploy or capture");
  }
  const json::value* steps_v = body.if_contains("buildStep");
  json::array steps_in = steps_v != nullptr && steps_v->is_array() ? steps_v->as_array()
                         : doc.contains("buildStep") ? doc["buildStep"].as_array()
                                                     : json::array();
  if (steps_v != nullptr && !steps_v->is_array() && !steps_v->is_null()) {
    return InvalidArgument("buildStep must be an array");
  }
  if (steps_in.size() > 200) return InvalidArgument("a build plan has at most 200 steps");
  // Steps in serialNumber order when they carry one, else as given.
  struct Step {
    double serial;
    size_t index;
    json::object o;
  };
  std::vector<Step> steps;
  for (size_t i = 0; i < steps_in.size(); ++i) {
    if (!steps_in[i].is_object()) return InvalidArgument("each buildStep must be an object");
    const json::object& s = steps_in[i].as_object();
    double serial = double(i + 1);
    if (const json::value* sn = s.if_contains("serialNumber"); sn != nullptr && !sn->is_null()) {
      std::string text = sn->is_string() ? std::string(sn->as_string()) : json::serialize(*sn);
      char* end = nullptr;
      serial = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0') {
        return InvalidArgument("buildStep " + std::to_string(i + 1) + ": serialNumber must be a number");
      }
    }
    steps.push_back({serial, i, s});
  }
  std::stable_sort(steps.begin(), steps.end(),
                   [](const Step& a, const Step& b) { return a.serial < b.serial; });

  json::array out_steps, dependent;
  std::map<std::string, ScriptAttribute> used;  // by name, over every step
  std::vector<std::string> used_order;
  std::set<std::string> nic_fields_used, plain_used;
  for (size_t k = 0; k < steps.size(); ++k) {
    const json::object& s = steps[k].o;
    std::string where = "buildStep " + std::to_string(k + 1);
    json::object script;
    std::string uri = Str(s, "planScriptUri");
    if (!uri.empty()) {
      auto r = Resolve(Kind::kPlanScript, uri);
      if (!r.ok()) return InvalidArgument(where + ": " + r.status().message());
      script = std::move(*r);
    } else {
      std::string by_name = Str(s, "planScriptName");
      if (by_name.empty()) return InvalidArgument(where + ": planScriptUri is required");
      INGOT_ASSIGN_OR_RETURN(auto found, repo_.FindByName(Kind::kPlanScript, by_name));
      if (!found) return InvalidArgument(where + ": no plan script named '" + by_name + "'");
      script = std::move(*found);
    }
    std::string st = Str(script, "planType");
    if (st != "general" && st != type) {
      return InvalidArgument(where + ": the " + st + " plan script '" + Str(script, "name") +
                             "' cannot be a step of a " + type + " build plan");
    }
    std::string params = Str(s, "parameters");
    auto parsed = ParseStepParameters(params);
    if (!parsed.ok()) return InvalidArgument(where + ": " + parsed.status().message());
    for (const AttributeRef& r : ParseAttributeRefs(Str(script, "content"))) {
      if (!used.count(r.name)) {
        used_order.push_back(r.name);
        used[r.name] = {r.name, std::nullopt, false};
      }
      if (r.field.empty()) {
        plain_used.insert(r.name);
        if (!used[r.name].default_value) used[r.name].default_value = r.default_value;
      } else {
        used[r.name].nic = true;
        nic_fields_used.insert(r.name);
      }
    }
    out_steps.push_back(json::object{{"serialNumber", std::to_string(k + 1)},
                                     {"parameters", params},
                                     {"planScriptName", script["name"]},
                                     {"planScriptUri", script["uri"]}});
    dependent.push_back(json::object{{"name", script["name"]}, {"uri", script["uri"]}});
  }
  for (const std::string& n : used_order) {
    if (plain_used.count(n) && nic_fields_used.count(n)) {
      return InvalidArgument("attribute " + n +
                             ": the plan scripts use it both as a NIC (" + n +
                             ".field) and as a plain value");
    }
  }
  // Declarations: given ones checked; the scripts' other attributes declared as strings (NICs as
  // NICs) with the scripts' defaults.
  std::vector<AttributeSpec> specs;
  std::set<std::string> declared;
  if (const json::value* ca = body.if_contains("customAttributes"); ca != nullptr && !ca->is_null()) {
    if (!ca->is_array()) return InvalidArgument("customAttributes must be an array");
    for (const json::value& e : ca->as_array()) {
      INGOT_ASSIGN_OR_RETURN(AttributeSpec s, ParseAttributeSpec(e));
      if (!declared.insert(s.name).second) {
        return InvalidArgument("attribute " + s.name + " is declared twice");
      }
      if (s.type == AttributeType::kNic && plain_used.count(s.name)) {
        return InvalidArgument("attribute " + s.name + " is a NIC but a plan script uses @" +
                               s.name + "@ without a field");
      }
      if (s.type != AttributeType::kNic && nic_fields_used.count(s.name)) {
        return InvalidArgument("attribute " + s.name + " is used as a NIC (" + s.name +
                               ".field) by a plan script; declare it with type nic");
      }
      specs.push_back(std::move(s));
    }
  }
  for (const std::string& n : used_order) {
    if (declared.count(n)) continue;
    AttributeSpec s;
    s.name = n;
    s.type = used[n].nic ? AttributeType::kNic : AttributeType::kString;
    if (used[n].default_value && !used[n].nic) {
      s.value = *used[n].default_value;
      s.has_value = true;
    }
    specs.push_back(std::move(s));
  }
  json::array attrs;
  for (const AttributeSpec& s : specs) attrs.push_back(AttributeSpecJson(s));
  doc["name"] = name;
  doc["description"] = Str(body, "description", Str(doc, "description"));
  doc["oeBuildPlanType"] = type;
  doc["buildStep"] = std::move(out_steps);
  doc["customAttributes"] = std::move(attrs);
  doc["dependentArtifacts"] = std::move(dependent);
  doc["hpProvided"] = Flag(body, "hpProvided", Flag(doc, "hpProvided"));
  doc["readOnly"] = Flag(body, "readOnly", Flag(doc, "readOnly"));
  return doc;
}

Result<json::object> ArtifactService::CreateBuildPlan(const json::object& body) {
  std::lock_guard<std::mutex> lock(write_mu_);
  INGOT_ASSIGN_OR_RETURN(json::object doc, CheckBuildPlan(body, {}));
  std::string id = NewUuid();
  doc["buildPlanid"] = id;
  Stamp(doc, Kind::kBuildPlan, id, "OeBuildPlanV5", "oe-build-plans");
  INGOT_RETURN_IF_ERROR(repo_.Put({Kind::kBuildPlan, id, doc}));
  return doc;
}

Result<json::object> ArtifactService::UpdateBuildPlan(const std::string& id,
                                                      const json::object& body, bool force) {
  std::lock_guard<std::mutex> lock(write_mu_);
  INGOT_ASSIGN_OR_RETURN(json::object old, repo_.Get(Kind::kBuildPlan, id));
  if (ReadOnly(old) && !force) {
    return Conflict("build plan '" + Str(old, "name") + "'" + kReadOnlyMessage);
  }
  json::object merged = body;
  if (!merged.contains("name")) merged["name"] = old["name"];
  INGOT_ASSIGN_OR_RETURN(json::object doc, CheckBuildPlan(merged, old));
  Stamp(doc, Kind::kBuildPlan, id, "OeBuildPlanV5", "oe-build-plans");
  INGOT_RETURN_IF_ERROR(repo_.Put({Kind::kBuildPlan, id, doc}));
  return doc;
}

Status ArtifactService::DeleteBuildPlan(const std::string& id, bool force) {
  std::lock_guard<std::mutex> lock(write_mu_);
  INGOT_ASSIGN_OR_RETURN(json::object doc, repo_.Get(Kind::kBuildPlan, id));
  if (ReadOnly(doc) && !force) {
    return Conflict("build plan '" + Str(doc, "name") + "'" + kReadOnlyMessage +
                    " (DELETE with ?force=true removes it anyway)");
  }
  INGOT_ASSIGN_OR_RETURN(auto plans, repo_.List(Kind::kDeploymentPlan));
  std::vector<std::string> users;
  for (const json::object& p : plans) {
    if (IdOf(Str(p, "oeBuildPlanURI")) == id) users.push_back(Str(p, "name"));
  }
  if (!users.empty()) {
    return Conflict("build plan '" + Str(doc, "name") + "' is used by the deployment plan(s) " +
                    Names(users));
  }
  return repo_.Remove(Kind::kBuildPlan, id);
}

// ---------------------------------------------------------------- golden images

// Checks the file through formats/ (a hostile image is refused here, once), hashes it, and renames
// it into place; fills size, format and checksum.
Result<std::string> ArtifactService::InstallGoldenFile(const std::string& tmp, json::object& doc) {
  auto fail = [&](Status s) -> Status {
    (void)RemoveFile(tmp);
    return s;
  };
  auto file = io::FileSource::Open(tmp);
  if (!file.ok()) return fail(file.status());
  auto format = formats::Detect(**file);
  if (!format.ok()) return fail(InvalidArgument("the golden image: " + format.status().message()));
  auto image = formats::Open(**file, *format);
  if (!image.ok()) {
    return fail(InvalidArgument("the golden image is refused: " + image.status().message()));
  }
  auto hasher = io::Hasher::Create("sha256");
  if (!hasher.ok()) return fail(hasher.status());
  std::vector<uint8_t> buf(1 << 20);
  for (uint64_t off = 0; off < (*file)->Size();) {
    auto n = (*file)->ReadAt(off, buf);
    if (!n.ok()) return fail(n.status());
    if (*n == 0) break;
    (*hasher)->Update({buf.data(), *n});
    off += *n;
  }
  const std::string id = Str(doc, "id");
  const std::string path = options_.dir + "/golden/" + id + ".img";
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail(FromErrno(errno, "rename " + tmp));
  INGOT_RETURN_IF_ERROR(io::SyncParentDir(path));
  doc["size"] = (*file)->Size();
  doc["virtualSize"] = (*image)->Size();
  doc["format"] = std::string(formats::FormatName(*format));
  doc["checkSum"] = (*hasher)->HexDigest();
  doc["checkSumAlgorithm"] = "sha256";
  // The file's name only: the data directory may move.
  doc["_file"] = id + ".img";
  return path;
}

namespace {

// Copies `in` into a new file `path`, fsynced.
Status WriteFileFrom(const std::string& path, io::Reader& in) {
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640));
  std::vector<uint8_t> buf(1 << 20);
  for (;;) {
    INGOT_ASSIGN_OR_RETURN(size_t n, in.Read(buf));
    if (n == 0) break;
    INGOT_RETURN_IF_ERROR(io::WriteAll(fd.get(), {buf.data(), n}, path));
  }
  if (::fsync(fd.get()) != 0) return FromErrno(errno, "fsync " + path);
  return Status::Ok();
}

class SourceReader final : public io::Reader {
 public:
  explicit SourceReader(io::ByteSource& src) : src_(src) {}
  Result<size_t> Read(std::span<uint8_t> buf) override {
    if (offset_ >= src_.Size()) return size_t{0};
    size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size(), src_.Size() - offset_));
    INGOT_ASSIGN_OR_RETURN(size_t n, src_.ReadAt(offset_, buf.first(want)));
    if (n == 0) return IoError("the catalog image is shorter than its size");
    offset_ += n;
    return n;
  }

 private:
  io::ByteSource& src_;
  uint64_t offset_ = 0;
};

}  // namespace

Result<json::object> ArtifactService::UploadGoldenImage(const std::string& name,
                                                        const std::string& description,
                                                        io::Reader& bytes) {
  std::string checked;
  INGOT_RETURN_IF_ERROR(CheckName(json::object{{"name", name}}, checked));
  {
    INGOT_ASSIGN_OR_RETURN(auto taken, repo_.FindByName(Kind::kGoldenImage, name));
    if (taken) return AlreadyExists("the name '" + name + "' is taken");
  }
  std::string id = NewUuid();
  json::object doc{{"name", name}, {"description", description}, {"id", id},
                   {"readOnly", false}, {"importedFromBundle", false}, {"bundleName", ""},
                   {"bundleURI", ""}, {"imageCapture", false}, {"source", "upload"}};
  const std::string tmp = options_.dir + "/golden/.tmp-" + id;
  if (Status s = WriteFileFrom(tmp, bytes); !s.ok()) {
    (void)RemoveFile(tmp);
    return s;
  }
  INGOT_ASSIGN_OR_RETURN(std::string path, InstallGoldenFile(tmp, doc));
  Stamp(doc, Kind::kGoldenImage, id, "GoldenImage", "golden-images");
  {
    std::lock_guard<std::mutex> lock(write_mu_);
    if (Status s = repo_.Put({Kind::kGoldenImage, id, doc}); !s.ok()) {
      (void)RemoveFile(path);
      return s;
    }
  }
  log::Info("deploy.golden_image", {{"id", id}, {"name", name}, {"format", Str(doc, "format")}});
  return PublishToCatalog(std::move(doc));
}

void ArtifactService::PublishToCatalog(const std::string& id) {
  auto doc = repo_.Get(Kind::kGoldenImage, id);
  if (doc.ok()) (void)PublishToCatalog(std::move(*doc));
}

json::object ArtifactService::PublishToCatalog(json::object doc) {
  if (!publisher_.publish || Str(doc, "source") == "catalog" || !Str(doc, "imageId").empty()) {
    return doc;
  }
  const std::string id = Str(doc, "id");
  GoldenImageFile file{.golden_id = id,
                       .name = Str(doc, "name"),
                       .path = options_.dir + "/golden/" + Str(doc, "_file"),
                       .disk_format = "raw",
                       .size = doc.contains("size") ? doc.at("size").to_number<uint64_t>() : 0};
  if (auto f = formats::ParseFormatName(Str(doc, "format"))) {
    file.disk_format = std::string(formats::GlanceDiskFormatName(*f));
  }
  // The copy runs outside the write lock: it takes as long as the image is big.
  auto image_id = publisher_.publish(file);
  if (!image_id.ok()) {
    log::Warn("deploy.golden_image.catalog_failed",
              {{"id", id}, {"error", image_id.status().ToString()}});
    return doc;
  }
  std::lock_guard<std::mutex> lock(write_mu_);
  auto now = repo_.Get(Kind::kGoldenImage, id);
  if (!now.ok()) {
    // Deleted meanwhile: the twin goes too.
    if (publisher_.remove) (void)publisher_.remove(*image_id);
    return doc;
  }
  (*now)["imageId"] = *image_id;
  (*now)["catalogImageOwned"] = true;
  if (Status s = repo_.Put({Kind::kGoldenImage, id, *now}); !s.ok()) {
    log::Warn("deploy.golden_image.catalog_failed", {{"id", id}, {"error", s.ToString()}});
    return doc;
  }
  log::Info("deploy.golden_image.catalog", {{"id", id}, {"image_id", *image_id}});
  return *now;
}

Result<json::object> ArtifactService::CreateGoldenImage(const json::object& body) {
  std::string name;
  INGOT_RETURN_IF_ERROR(CheckName(body, name));
  if (body.contains("osVolumeURI") && !Str(body, "osVolumeURI").empty()) {
    return InvalidArgument("a capture (osVolumeURI) is CaptureGoldenImage's, answered with a task");
  }
  std::string image_id = Str(body, "imageId");
  if (image_id.empty()) {
    return InvalidArgument("imageId (a catalog image) is required; or upload the image as "
                           "multipart/form-data");
  }
  if (!catalog_) return Unsupported("this node has no image catalog to take golden images from");
  {
    INGOT_ASSIGN_OR_RETURN(auto taken, repo_.FindByName(Kind::kGoldenImage, name));
    if (taken) return AlreadyExists("the name '" + name + "' is taken");
  }
  auto image = catalog_(image_id);
  if (!image.ok()) {
    if (image.status().code() == Code::kNotFound || image.status().code() == Code::kConflict) {
      return InvalidArgument("imageId " + image_id + ": " + image.status().message());
    }
    return image.status();
  }
  if (image->bytes == nullptr) return Internal("the catalog opener gave no bytes for " + image_id);
  std::string id = NewUuid();
  json::object doc{{"name", name},
                   {"description", Str(body, "description")},
                   {"id", id},
                   {"readOnly", Flag(body, "readOnly")},
                   {"importedFromBundle", !Str(body, "bundleName").empty()},
                   {"bundleName", Str(body, "bundleName")},
                   {"bundleURI", Str(body, "bundleURI")},
                   {"imageCapture", false},
                   {"imageId", image_id},
                   {"source", "catalog"}};
  const std::string tmp = options_.dir + "/golden/.tmp-" + id;
  SourceReader reader(*image->bytes);
  if (Status s = WriteFileFrom(tmp, reader); !s.ok()) {
    (void)RemoveFile(tmp);
    return s;
  }
  INGOT_ASSIGN_OR_RETURN(std::string path, InstallGoldenFile(tmp, doc));
  Stamp(doc, Kind::kGoldenImage, id, "GoldenImage", "golden-images");
  std::lock_guard<std::mutex> lock(write_mu_);
  if (Status s = repo_.Put({Kind::kGoldenImage, id, doc}); !s.ok()) {
    (void)RemoveFile(path);
    return s;
  }
  return doc;
}

Result<json::object> ArtifactService::UpdateGoldenImage(const std::string& id,
                                                        const json::object& body, bool force) {
  std::lock_guard<std::mutex> lock(write_mu_);
  INGOT_ASSIGN_OR_RETURN(json::object doc, repo_.Get(Kind::kGoldenImage, id));
  if (ReadOnly(doc) && !force) {
    return Conflict("golden image '" + Str(doc, "name") + "'" + kReadOnlyMessage);
  }
  json::object merged = body;
  if (!merged.contains("name")) merged["name"] = doc["name"];
  std::string name;
  INGOT_RETURN_IF_ERROR(CheckName(merged, name));
  doc["name"] = name;
  doc["description"] = Str(body, "description", Str(doc, "description"));
  doc["readOnly"] = Flag(body, "readOnly", Flag(doc, "readOnly"));
  Stamp(doc, Kind::kGoldenImage, id, "GoldenImage", "golden-images");
  INGOT_RETURN_IF_ERROR(repo_.Put({Kind::kGoldenImage, id, doc}));
  return doc;
}

Status ArtifactService::DeleteGoldenImage(const std::string& id, bool force) {
  std::lock_guard<std::mutex> lock(write_mu_);
  INGOT_ASSIGN_OR_RETURN(json::object doc, repo_.Get(Kind::kGoldenImage, id));
  if (ReadOnly(doc) && !force) {
    return Conflict("golden image '" + Str(doc, "name") + "'" + kReadOnlyMessage +
                    " (DELETE with ?force=true removes it anyway)");
  }
  INGOT_ASSIGN_OR_RETURN(auto plans, repo_.List(Kind::kDeploymentPlan));
  std::vector<std::string> users;
  for (const json::object& p : plans) {
    if (IdOf(Str(p, "goldenImageURI")) == id) users.push_back(Str(p, "name"));
  }
  if (!users.empty()) {
    return Conflict("golden image '" + Str(doc, "name") + "' is used by the deployment plan(s) " +
                    Names(users));
  }
  INGOT_RETURN_IF_ERROR(repo_.Remove(Kind::kGoldenImage, id));
  if (Flag(doc, "catalogImageOwned") && publisher_.remove) {
    if (Status s = publisher_.remove(Str(doc, "imageId")); !s.ok()) {
      log::Warn("deploy.golden_image.catalog_delete_failed",
                {{"id", id}, {"image_id", Str(doc, "imageId")}, {"error", s.ToString()}});
    }
  }
  // Volumes cloned from it hold a hard link to the file (volume_store.h): removing the name is safe.
  return RemoveFile(options_.dir + "/golden/" + Str(doc, "_file"));
}

Result<std::string> ArtifactService::GoldenImageArchive(const std::string& id) {
  INGOT_ASSIGN_OR_RETURN(json::object doc, repo_.Get(Kind::kGoldenImage, id));
  std::string out = "golden image: " + Str(doc, "name") + "\n";
  for (const char* key : {"id", "description", "source", "created", "format", "checkSum",
                          "checkSumAlgorithm", "bundleName", "osVolumeURI", "buildPlanUri",
                          "imageId"}) {
    if (std::string v = Str(doc, key); !v.empty()) out += std::string(key) + ": " + v + "\n";
  }
  for (const char* key : {"size", "virtualSize"}) {
    if (const json::value* v = doc.if_contains(key); v != nullptr && v->is_number()) {
      out += std::string(key) + ": " + json::serialize(*v) + "\n";
    }
  }
  // The tasks that made it (a capture's): their progress and output.
  INGOT_ASSIGN_OR_RETURN(auto tasks, repo_.List(Kind::kTask));
  for (const json::object& t : tasks) {
    const json::value* a = t.if_contains("associatedResource");
    if (a == nullptr || !a->is_object() || Str(a->as_object(), "resourceUri") != Str(doc, "uri")) {
      continue;
    }
    out += "\ntask " + Str(t, "name") + " (" + Str(t, "id") + "): " + Str(t, "taskState") + "\n";
    if (const json::value* u = t.if_contains("progressUpdates"); u != nullptr && u->is_array()) {
      for (const json::value& e : u->as_array()) {
        if (!e.is_object()) continue;
        out += "  " + Str(e.as_object(), "timestamp") + " " + Str(e.as_object(), "statusUpdate") + "\n";
      }
    }
    if (const json::value* o = t.if_contains("taskOutput"); o != nullptr && o->is_array()) {
      for (const json::value& e : o->as_array()) {
        if (e.is_string()) out += std::string(e.as_string()) + "\n";
      }
    }
  }
  return out;
}

Result<std::string> ArtifactService::GoldenImagePath(const std::string& id) {
  INGOT_ASSIGN_OR_RETURN(json::object doc, repo_.Get(Kind::kGoldenImage, id));
  return options_.dir + "/golden/" + Str(doc, "_file");
}

// ---------------------------------------------------------------- deployment plans

namespace {

Result<std::vector<AttributeSpec>> SpecsOf(const json::object& build_plan) {
  std::vector<AttributeSpec> specs;
  if (const json::value* ca = build_plan.if_contains("customAttributes"); ca && ca->is_array()) {
    for (const json::value& e : ca->as_array()) {
      auto s = ParseAttributeSpec(e);
      if (!s.ok()) return Corruption("build plan " + Str(build_plan, "id") + ": " + s.status().message());
      specs.push_back(std::move(*s));
    }
  }
  return specs;
}

}  // namespace

Result<json::object> ArtifactService::CheckDeploymentPlan(const json::object& body,
                                                          json::object doc) {
  std::string name;
  INGOT_RETURN_IF_ERROR(CheckName(body, name));
  std::string bp_uri = Str(body, "oeBuildPlanURI", Str(body, "oeBuildPlanUri", Str(doc, "oeBuildPlanURI")));
  INGOT_ASSIGN_OR_RETURN(json::object bp, Resolve(Kind::kBuildPlan, bp_uri));
  if (Str(bp, "oeBuildPlanType") != "deploy") {
    return InvalidArgument("oeBuildPlanURI: '" + Str(bp, "name") + "' is a " +
                           Str(bp, "oeBuildPlanType") + " build plan; a deployment plan needs a "
                           "deploy build plan");
  }
  std::string gi_uri = Str(body, "goldenImageURI", Str(body, "goldenImageUri", Str(doc, "goldenImageURI")));
  json::object gi;
  if (!gi_uri.empty()) {
    INGOT_ASSIGN_OR_RETURN(gi, Resolve(Kind::kGoldenImage, gi_uri));
  }
  INGOT_ASSIGN_OR_RETURN(std::vector<AttributeSpec> specs, SpecsOf(bp));
  std::map<std::string, const AttributeSpec*> spec_of;
  for (const AttributeSpec& s : specs) spec_of[s.name] = &s;
  json::array overrides;
  const json::value* ca = body.if_contains("customAttributes");
  if (ca == nullptr) ca = doc.if_contains("customAttributes");
  if (ca != nullptr && !ca->is_null()) {
    if (!ca->is_array()) return InvalidArgument("customAttributes must be an array");
    std::set<std::string> seen;
    for (const json::value& e : ca->as_array()) {
      INGOT_ASSIGN_OR_RETURN(AttributeOverride o, ParseAttributeOverride(e));
      std::string base = o.name.substr(0, o.name.find('.'));
      auto it = spec_of.find(base);
      if (it == spec_of.end()) {
        return InvalidArgument("attribute " + o.name + ": the build plan '" + Str(bp, "name") +
                               "' has no such attribute");
      }
      if (!seen.insert(o.name).second) return InvalidArgument("attribute " + o.name + " is given twice");
      if (it->second->type == AttributeType::kPassword && o.has_value && !o.value.empty()) {
        return InvalidArgument("attribute " + o.name +
                               ": a password is never stored; give it when deploying");
      }
      if (o.has_value && !o.value.empty()) {
        INGOT_RETURN_IF_ERROR(CheckValue(*it->second, o.name, o.value));
      }
      json::object out{{"name", o.name}, {"editable", o.editable}, {"visible", o.visible}};
      if (o.has_value && !(it->second->type == AttributeType::kPassword)) out["value"] = o.value;
      out["type"] = AttributeTypeName(it->second->type);
      overrides.push_back(std::move(out));
    }
  }
  doc["name"] = name;
  doc["description"] = Str(body, "description", Str(doc, "description"));
  doc["oeBuildPlanURI"] = bp["uri"];
  doc["oeBuildPlanName"] = bp["name"];
  doc["goldenImageURI"] = gi.empty() ? json::value("") : gi["uri"];
  doc["goldenImageName"] = gi.empty() ? json::value("") : gi["name"];
  doc["customAttributes"] = std::move(overrides);
  doc["hpProvided"] = Flag(body, "hpProvided", Flag(doc, "hpProvided"));
  doc["readOnly"] = Flag(body, "readOnly", Flag(doc, "readOnly"));
  return doc;
}

Result<json::object> ArtifactService::CreateDeploymentPlan(const json::object& body) {
  std::lock_guard<std::mutex> lock(write_mu_);
  INGOT_ASSIGN_OR_RETURN(json::object doc, CheckDeploymentPlan(body, {}));
  std::string id = NewUuid();
  Stamp(doc, Kind::kDeploymentPlan, id, "OEDeploymentPlanV5", "oe-deployment-plans");
  INGOT_RETURN_IF_ERROR(repo_.Put({Kind::kDeploymentPlan, id, doc}));
  return doc;
}

Result<json::object> ArtifactService::UpdateDeploymentPlan(const std::string& id,
                                                           const json::object& body, bool force) {
  std::lock_guard<std::mutex> lock(write_mu_);
  INGOT_ASSIGN_OR_RETURN(json::object old, repo_.Get(Kind::kDeploymentPlan, id));
  if (ReadOnly(old) && !force) {
    return Conflict("deployment plan '" + Str(old, "name") + "'" + kReadOnlyMessage);
  }
  json::object merged = body;
  if (!merged.contains("name")) merged["name"] = old["name"];
  INGOT_ASSIGN_OR_RETURN(json::object doc, CheckDeploymentPlan(merged, old));
  Stamp(doc, Kind::kDeploymentPlan, id, "OEDeploymentPlanV5", "oe-deployment-plans");
  INGOT_RETURN_IF_ERROR(repo_.Put({Kind::kDeploymentPlan, id, doc}));
  return doc;
}

Result<json::array> ArtifactService::DeploymentPlanUsedBy(const std::string& id) {
  INGOT_RETURN_IF_ERROR(repo_.Get(Kind::kDeploymentPlan, id).status());
  INGOT_ASSIGN_OR_RETURN(auto volumes, repo_.List(Kind::kOsVolume));
  json::array out;
  for (const json::object& v : volumes) {
    if (IdOf(Str(v, "deploymentPlanUri")) == id) {
      out.push_back(json::object{{"name", v.at("name")}, {"uri", v.at("uri")}, {"state", v.at("state")}});
    }
  }
  return out;
}

Status ArtifactService::DeleteDeploymentPlan(const std::string& id, bool force) {
  std::lock_guard<std::mutex> lock(write_mu_);
  INGOT_ASSIGN_OR_RETURN(json::object doc, repo_.Get(Kind::kDeploymentPlan, id));
  if (ReadOnly(doc) && !force) {
    return Conflict("deployment plan '" + Str(doc, "name") + "'" + kReadOnlyMessage +
                    " (DELETE with ?force=true removes it anyway)");
  }
  INGOT_ASSIGN_OR_RETURN(json::array users, DeploymentPlanUsedBy(id));
  if (!users.empty()) {
    std::vector<std::string> names;
    for (const json::value& u : users) names.emplace_back(u.as_object().at("name").as_string());
    return Conflict("deployment plan '" + Str(doc, "name") + "' is used by the OS volume(s) " +
                    Names(names));
  }
  return repo_.Remove(Kind::kDeploymentPlan, id);
}

// ---------------------------------------------------------------- OS volumes

Result<std::string> ArtifactService::EmptyBase() {
  // An empty raw file: a volume over it reads zeros everywhere (os_volume.h: past the base).
  const std::string path = options_.dir + "/golden/empty.raw";
  struct stat st{};
  if (::stat(path.c_str(), &st) == 0) return path;
  INGOT_ASSIGN_OR_RETURN(io::UniqueFd fd, io::OpenFile(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0640));
  if (::fsync(fd.get()) != 0) return FromErrno(errno, "fsync " + path);
  INGOT_RETURN_IF_ERROR(io::SyncParentDir(path));
  return path;
}

Result<ArtifactService::Prepared> ArtifactService::PrepareDeployment(const json::object& body,
                                                                   const std::string& name) {
  // Ingot's addition: which plan script engine personalises this volume (guestfish/engine.h).
  guestfish::Engine engine = options_.engine;
  if (std::string e = Str(body, "engine"); !e.empty()) {
    auto parsed = guestfish::ParseEngine(e);
    if (!parsed) return InvalidArgument("engine must be auto, native or guestfish");
    engine = *parsed;
  }
  Prepared out;
  std::string dp_uri = Str(body, "deploymentPlanUri", Str(body, "deploymentPlanURI"));
  INGOT_ASSIGN_OR_RETURN(json::object dp, Resolve(Kind::kDeploymentPlan, dp_uri));
  INGOT_ASSIGN_OR_RETURN(json::object bp, Resolve(Kind::kBuildPlan, Str(dp, "oeBuildPlanURI")));
  json::object gi;
  if (!Str(dp, "goldenImageURI").empty()) {
    INGOT_ASSIGN_OR_RETURN(gi, Resolve(Kind::kGoldenImage, Str(dp, "goldenImageURI")));
  }
  // The deployment's values.
  std::map<std::string, std::string> given;
  if (const json::value* ca = body.if_contains("customAttributes"); ca != nullptr && !ca->is_null()) {
    if (!ca->is_array()) return InvalidArgument("customAttributes must be an array of {name, value}");
    for (const json::value& e : ca->as_array()) {
      INGOT_ASSIGN_OR_RETURN(AttributeOverride o, ParseAttributeOverride(e));
      if (!o.has_value) return InvalidArgument("attribute " + o.name + ": value is required");
      if (!given.emplace(o.name, o.value).second) {
        return InvalidArgument("attribute " + o.name + " is given twice");
      }
    }
  }
  std::vector<AttributeOverride> plan;
  for (const json::value& e : dp["customAttributes"].as_array()) {
    INGOT_ASSIGN_OR_RETURN(AttributeOverride o, ParseAttributeOverride(e));
    plan.push_back(std::move(o));
  }
  INGOT_ASSIGN_OR_RETURN(std::vector<AttributeSpec> specs, SpecsOf(bp));
  // The steps, from the scripts as they are now.
  std::vector<StepAttributes> steps;
  std::vector<std::string> texts;
  for (const json::value& sv : bp["buildStep"].as_array()) {
    const json::object& s = sv.as_object();
    auto script = Resolve(Kind::kPlanScript, Str(s, "planScriptUri"));
    if (!script.ok()) {
      return InvalidArgument("the build plan's step " + Str(s, "serialNumber") + ": " +
                             script.status().message());
    }
    StepAttributes st;
    st.script_name = Str(*script, "name");
    texts.push_back(Str(*script, "content"));
    st.refs = ParseAttributeRefs(texts.back());
    INGOT_ASSIGN_OR_RETURN(st.parameters, ParseStepParameters(Str(s, "parameters")));
    steps.push_back(std::move(st));
  }
  INGOT_ASSIGN_OR_RETURN(auto values, ResolveValues(steps, specs, plan, given));

  // VolumeSize (MiB): the size of an empty volume, or a larger one than the golden image.
  uint64_t size = 0;
  {
    std::optional<std::string> vs;
    for (const AttributeSpec& s : specs) {
      if (s.name == "VolumeSize" && s.has_value) vs = s.value;
    }
    for (const AttributeOverride& o : plan) {
      if (o.name == "VolumeSize" && o.has_value) vs = o.value;
    }
    if (auto it = given.find("VolumeSize"); it != given.end()) vs = it->second;
    if (vs) {
      char* end = nullptr;
      unsigned long long mib = std::strtoull(vs->c_str(), &end, 10);
      if (vs->empty() || *end != '\0' || mib == 0 || mib > (1ull << 30)) {
        return InvalidArgument("attribute VolumeSize: must be a whole number of MiB from 1");
      }
      size = uint64_t(mib) << 20;
      if (!gi.empty() && size < gi["virtualSize"].to_number<uint64_t>()) {
        return InvalidArgument("attribute VolumeSize: " + *vs + " MiB is smaller than the golden image '" +
                               Str(gi, "name") + "'");
      }
    }
  }
  if (gi.empty() && size == 0) {
    return InvalidArgument("attribute VolumeSize: the deployment plan has no golden image, so the "
                           "volume's size (VolumeSize, MiB) is required");
  }
  bool attach = Flag(body, "attach", true);
  std::vector<std::string> allow = options_.default_allow;
  if (const json::value* a = body.if_contains("allow"); a != nullptr && !a->is_null()) {
    if (!a->is_array()) return InvalidArgument("allow must be an array of addresses or prefixes");
    allow.clear();
    for (const json::value& e : a->as_array()) {
      if (!e.is_string()) return InvalidArgument("allow must be an array of addresses or prefixes");
      allow.emplace_back(e.as_string());
    }
    INGOT_RETURN_IF_ERROR(CheckAllowList(allow));
  }

  Job job;
  job.volume_name = name;
  job.size = size;
  job.attach = attach;
  job.allow = allow;
  job.engine = engine;
  for (size_t i = 0; i < steps.size(); ++i) {
    std::vector<std::string> secrets = PasswordValues(specs, values[i]);
    job.secrets.insert(job.secrets.end(), secrets.begin(), secrets.end());
    INGOT_ASSIGN_OR_RETURN(std::string text, Substitute(texts[i], values[i]));
    job.scripts.push_back({steps[i].script_name, std::move(text)});
  }
  if (!gi.empty()) job.base_path = options_.dir + "/golden/" + Str(gi, "_file");

  // What the record shows of the values: never a password.
  std::set<std::string> passwords;
  for (const AttributeSpec& s : specs) {
    if (s.type == AttributeType::kPassword) passwords.insert(s.name);
  }
  json::array shown;
  for (const auto& [k, v] : given) {
    shown.push_back(json::object{{"name", k}, {"value", passwords.count(k) ? "" : v}});
  }

  out.job = std::move(job);
  out.dp = std::move(dp);
  out.bp = std::move(bp);
  out.gi = std::move(gi);
  out.shown = std::move(shown);
  out.steps = steps.size();
  return out;
}

// Writes the volume's record and its task in one transaction, then hands the job to the worker.
// The caller holds write_mu_.
Result<json::object> ArtifactService::RecordAndQueue(json::object volume, json::object task, Job job) {
  job.volume_id = Str(volume, "id");
  job.task_id = Str(task, "id");
  INGOT_RETURN_IF_ERROR(
      repo_.Put({{Kind::kOsVolume, job.volume_id, volume}, {Kind::kTask, job.task_id, task}}));
  {
    std::lock_guard<std::mutex> q(mu_);
    queue_.push_back(std::move(job));
  }
  cv_.notify_all();
  return task;
}

Result<json::object> ArtifactService::CreateOsVolume(const json::object& body,
                                                     const std::string& owner) {
  std::string name;
  INGOT_RETURN_IF_ERROR(CheckName(body, name));
  if (!ValidVolumeName(name)) {
    return InvalidArgument("name: an OS volume's name is its NBD export name: 1-128 of "
                           "A-Z a-z 0-9 . _ - not starting with '.'");
  }
  INGOT_ASSIGN_OR_RETURN(Prepared p, PrepareDeployment(body, name));
  Job& job = p.job;
  json::object& dp = p.dp;
  json::object& bp = p.bp;
  json::object& gi = p.gi;
  std::lock_guard<std::mutex> lock(write_mu_);
  {
    INGOT_ASSIGN_OR_RETURN(auto taken, repo_.FindByName(Kind::kOsVolume, name));
    if (taken) return AlreadyExists("an OS volume named '" + name + "' exists");
    if (volumes_.Get(name).ok()) {
      return AlreadyExists("a volume named '" + name + "' exists in the volume store");
    }
  }
  std::string vid = NewUuid(), tid = NewUuid();
  json::object volume{{"name", name},
                      {"description", Str(body, "description")},
                      {"deploymentPlanUri", dp["uri"]},
                      {"deploymentPlanName", dp["name"]},
                      {"buildPlanUri", bp["uri"]},
                      {"goldenVolumeUri", gi.empty() ? json::value("") : gi["uri"]},
                      {"customAttributes", std::move(p.shown)},
                      {"state", "Deploying"},
                      {"status", "OK"},
                      {"oeVolumeId", name},
                      {"nbdExport", name},
                      {"attached", false},
                      {"taskUri", "/rest/tasks/" + tid}};
  Stamp(volume, Kind::kOsVolume, vid, "OSVolume", "os-volumes");
  json::object task = NewTask(tid, "Create OS volume", owner, static_cast<int64_t>(p.steps + 2),
                              "os-volumes", name, volume["uri"]);
  return RecordAndQueue(std::move(volume), std::move(task), std::move(job));
}

Result<json::object> ArtifactService::RedeployOsVolume(const std::string& id,
                                                       const json::object& body,
                                                       const std::string& owner) {
  json::object volume;
  {
    auto by_id = repo_.Get(Kind::kOsVolume, IdOf(id));
    if (by_id.ok()) {
      volume = *by_id;
    } else {
      INGOT_ASSIGN_OR_RETURN(auto by_name, repo_.FindByName(Kind::kOsVolume, id));
      if (!by_name) return NotFound("no OS volume " + id);
      volume = *by_name;
    }
  }
  const std::string name = Str(volume, "name");
  // The request as a new deployment of the same name: the recorded values (passwords are not
  // recorded) under the ones given now.
  json::object request = body;
  if (Str(request, "deploymentPlanUri", Str(request, "deploymentPlanURI")).empty()) {
    request["deploymentPlanUri"] = volume["deploymentPlanUri"];
  }
  std::map<std::string, json::value> values;
  const json::value* recorded = std::as_const(volume).if_contains("customAttributes");
  const json::value* given = body.if_contains("customAttributes");
  for (const json::value* list : {recorded, given}) {
    if (list == nullptr || !list->is_array()) continue;
    for (const json::value& e : list->as_array()) {
      if (!e.is_object() || Str(e.as_object(), "name").empty()) continue;
      // A recorded "" is a password the record never kept.
      if (list == recorded && Str(e.as_object(), "value").empty()) continue;
      values[Str(e.as_object(), "name")] = e;
    }
  }
  json::array attrs;
  for (auto& [k, v] : values) attrs.push_back(v);
  request["customAttributes"] = std::move(attrs);
  std::vector<std::string> initiators;
  if (auto info = volumes_.Get(name); info.ok()) {
    initiators = info->rule.initiators;
    if (!request.contains("allow") && !info->rule.allow.empty()) {
      json::array allow;
      for (const std::string& a : info->rule.allow) allow.emplace_back(a);
      request["allow"] = std::move(allow);
    }
  }
  INGOT_ASSIGN_OR_RETURN(Prepared p, PrepareDeployment(request, name));
  p.job.replace = true;
  p.job.initiators = std::move(initiators);

  std::lock_guard<std::mutex> lock(write_mu_);
  INGOT_ASSIGN_OR_RETURN(volume, repo_.Get(Kind::kOsVolume, Str(volume, "id")));
  if (Str(volume, "state") == "Deploying") {
    return Conflict("OS volume '" + name + "' is being deployed; wait for its task");
  }
  const std::string vid = Str(volume, "id"), tid = NewUuid();
  volume["deploymentPlanUri"] = p.dp["uri"];
  volume["deploymentPlanName"] = p.dp["name"];
  volume["buildPlanUri"] = p.bp["uri"];
  volume["goldenVolumeUri"] = p.gi.empty() ? json::value("") : p.gi["uri"];
  volume["customAttributes"] = std::move(p.shown);
  volume["state"] = "Deploying";
  volume["status"] = "OK";
  volume["attached"] = false;
  volume["taskUri"] = "/rest/tasks/" + tid;
  volume.erase("error");
  Stamp(volume, Kind::kOsVolume, vid, "OSVolume", "os-volumes");
  json::object task = NewTask(tid, "Redeploy OS volume", owner, static_cast<int64_t>(p.steps + 2),
                              "os-volumes", name, volume["uri"]);
  return RecordAndQueue(std::move(volume), std::move(task), std::move(p.job));
}

void ArtifactService::Work() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) return;  // queued jobs are undone by the next start's Repair
    Job job = std::move(queue_.front());
    queue_.pop_front();
    running_job_ = true;
    lock.unlock();
    if (job.run) {
      job.run();
    } else {
      RunJob(job);
    }
    lock.lock();
    running_job_ = false;
    cv_.notify_all();
  }
}

void ArtifactService::RunJob(Job& job) {
  const std::string log_path = options_.dir + "/logs/" + job.volume_id + ".log";
  std::string log;
  auto note = [&](const std::string& line) {
    log += Now() + " " + Scrub(line, job.secrets) + "\n";
    // The log is rewritten whole at each step: small, and readable while the deployment runs.
    std::string tmp = log_path + ".tmp";
    if (auto fd = io::OpenFile(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640); fd.ok()) {
      (void)io::WriteAll(fd->get(), {reinterpret_cast<const uint8_t*>(log.data()), log.size()}, tmp);
      (void)::rename(tmp.c_str(), log_path.c_str());
    }
  };
  auto progress = [&](const std::string& text, int done) {
    auto t = repo_.Get(Kind::kTask, job.task_id);
    if (!t.ok()) return;
    Progress(*t, text);
    (*t)["completedSteps"] = done;
    int pct = static_cast<int>(100 * done / std::max<size_t>(1, job.scripts.size() + 2));
    (*t)["percentComplete"] = pct;
    (*t)["computedPercentComplete"] = pct;
    (void)repo_.Put({Kind::kTask, job.task_id, *t});
  };
  Status failure;
  std::string failed_script;
  note((job.replace ? "redeploying OS volume " : "deploying OS volume ") + job.volume_name);
  if (job.replace) {
    // The old clone goes: detached first (the export watcher ends its connections within a
    // second), then deleted once no client holds it.
    progress("Removing the old clone", 0);
    if (auto info = volumes_.Get(job.volume_name); info.ok() && info->rule.attached) {
      ExportRule rule = info->rule;
      rule.attached = false;
      failure = volumes_.SetExportRule(job.volume_name, rule);
    }
    for (int i = 0; failure.ok(); ++i) {
      Status gone = volumes_.Delete(job.volume_name);
      if (gone.ok() || gone.code() == Code::kNotFound) break;
      if (i == 50) {
        failure = Conflict("the old clone is still in use by a client after 5 s: " + gone.message());
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (failure.ok()) note("the old clone was removed");
  }
  progress("Cloning the golden image", 0);
  CloneRequest req{.name = job.volume_name, .base_path = job.base_path, .size = job.size};
  if (failure.ok() && job.base_path.empty()) {
    auto base = EmptyBase();
    if (!base.ok()) {
      failure = base.status();
    } else {
      req.base_path = *base;
      req.format = formats::Format::kRaw;
    }
  }
  if (failure.ok()) {
    auto created = volumes_.Create(req);
    if (!created.ok()) {
      failure = created.status();
    } else {
      note("cloned: " + std::to_string(created->meta.size) + " bytes, base format " +
           created->meta.base_format);
    }
  }
  if (failure.ok() && !job.scripts.empty()) {
    auto volume = volumes_.OpenVolume(job.volume_name);
    if (!volume.ok()) {
      failure = volume.status();
    } else {
      // One session for the whole build plan: HPE's plans mount in one script and unmount in
      // another (engine.h).
      std::string names;
      for (const guestfish::Script& script : job.scripts) {
        names += (names.empty() ? "" : ", ") + script.name;
      }
      progress("Running plan scripts " + names, 1);
      note("plan scripts " + names + ": start");
      auto report = guestfish::Run(**volume, job.scripts, job.engine);
      if (!report.ok()) {
        failure = report.status();
        for (const guestfish::Script& script : job.scripts) {
          if (failure.message().starts_with(script.name + " ")) failed_script = script.name;
        }
        note("plan scripts: FAILED: " + report.status().message());
      } else {
        note("plan scripts (" + std::string(guestfish::EngineName(report->used)) + "):\n" +
             report->log);
      }
      if (failure.ok()) {
        if (Status s = (*volume)->Flush(); !s.ok()) failure = s;
      }
    }
  }
  if (failure.ok() && job.attach) {
    if (Status s = volumes_.SetExportRule(job.volume_name, {.attached = true, .allow = job.allow, .initiators = job.initiators});
        !s.ok()) {
      failure = s;
    } else {
      note("attached: NBD export " + job.volume_name);
    }
  }
  if (!failure.ok()) {
    // No half-made volume stays: the clone goes, the record says why.
    Status d = volumes_.Delete(job.volume_name);
    if (!d.ok() && d.code() != Code::kNotFound) {
      log::Error("deploy.cleanup", {{"volume", job.volume_name}, {"cause", d.message()}});
    }
    note("deployment failed; the clone was removed");
  } else {
    note("deployment complete");
  }
  if (Status s = FinishJob(job, failure, failed_script); !s.ok()) {
    log::Error("deploy.finish", {{"volume", job.volume_name}, {"cause", s.message()}});
  }
}

Status ArtifactService::FinishJob(const Job& job, const Status& failure,
                                  const std::string& failed_script) {
  std::lock_guard<std::mutex> lock(write_mu_);
  INGOT_ASSIGN_OR_RETURN(json::object volume, repo_.Get(Kind::kOsVolume, job.volume_id));
  INGOT_ASSIGN_OR_RETURN(json::object task, repo_.Get(Kind::kTask, job.task_id));
  task["percentComplete"] = 100;
  task["computedPercentComplete"] = 100;
  volume["modified"] = Now();
  if (failure.ok()) {
    auto info = volumes_.Get(job.volume_name);
    if (info.ok()) {
      volume["size"] = info->meta.size;
      volume["attached"] = info->rule.attached;
      json::array allow;
      for (const std::string& a : info->rule.allow) allow.emplace_back(a);
      volume["allow"] = std::move(allow);
    }
    volume["state"] = "Normal";
    volume["status"] = "OK";
    task["taskState"] = "Completed";
    task["completedSteps"] = task["totalSteps"];
    Progress(task, "Completed");
    log::Info("deploy.volume", {{"volume", job.volume_name}, {"result", "completed"}});
  } else {
    // Server faults keep their cause in the log only; script errors are the user's to read.
    const bool user_error = !IsServerFault(failure.code());
    std::string message = user_error ? Scrub(failure.message(), job.secrets)
                                     : "the deployment failed on the server (see its log)";
    json::object err{{"errorCode", failed_script.empty() ? "DEPLOYMENT_FAILED" : "PLAN_SCRIPT_FAILED"},
                     {"message", message},
                     {"details", failed_script.empty() ? "" : "plan script " + failed_script},
                     {"recommendedActions",
                      json::array{failed_script.empty()
                                      ? "Check the golden image and the volume store, then deploy again."
                                      : "Correct the plan script or the attribute values, then deploy again."}},
                     {"nestedErrors", json::array()},
                     {"data", json::object{{"planScript", failed_script}}}};
    // "<script> line <N>: <message>" (guestfish/engine.h): the line, for clients that want it.
    if (size_t p = message.find(" line "); p != std::string::npos) {
      err["data"].as_object()["line"] = std::atoi(message.c_str() + p + 6);
    }
    task["taskErrors"] = json::array{std::move(err)};
    task["taskState"] = "Error";
    Progress(task, "Failed: " + message);
    volume["state"] = "Failed";
    volume["status"] = "Critical";
    volume["error"] = message;
    volume["attached"] = false;
    log::Warn("deploy.volume", {{"volume", job.volume_name},
                                {"result", "failed"},
                                {"cause", Scrub(failure.message(), job.secrets)}});
  }
  return repo_.Put({{Kind::kOsVolume, job.volume_id, volume}, {Kind::kTask, job.task_id, task}});
}

Status ArtifactService::DeleteOsVolume(const std::string& id) {
  std::lock_guard<std::mutex> lock(write_mu_);
  INGOT_ASSIGN_OR_RETURN(json::object v, repo_.Get(Kind::kOsVolume, id));
  if (Str(v, "state") == "Deploying") {
    return Conflict("OS volume '" + Str(v, "name") + "' is being deployed; delete it when its task "
                    "has ended");
  }
  Status s = volumes_.Delete(Str(v, "name"));
  if (!s.ok() && s.code() != Code::kNotFound) return s;
  INGOT_RETURN_IF_ERROR(repo_.Remove(Kind::kOsVolume, id));
  (void)RemoveFile(options_.dir + "/logs/" + id + ".log");
  return Status::Ok();
}

Result<json::object> ArtifactService::SetAttached(const std::string& id, bool attached,
                                                  const std::vector<std::string>& allow,
                                                  const std::vector<std::string>& initiators) {
  std::lock_guard<std::mutex> lock(write_mu_);
  INGOT_ASSIGN_OR_RETURN(json::object v, repo_.Get(Kind::kOsVolume, id));
  if (Str(v, "state") != "Normal") {
    return Conflict("OS volume '" + Str(v, "name") + "' is " + Str(v, "state") +
                    "; only a deployed volume is attached or detached");
  }
  INGOT_ASSIGN_OR_RETURN(ExportRule rule, volumes_.GetExportRule(Str(v, "name")));
  rule.attached = attached;
  if (attached) rule.allow = allow.empty() ? options_.default_allow : allow;
  if (attached) rule.initiators = initiators;  // iSCSI initiator names; empty: any
  INGOT_RETURN_IF_ERROR(volumes_.SetExportRule(Str(v, "name"), rule));
  v["attached"] = attached;
  json::array a;
  for (const std::string& e : rule.allow) a.emplace_back(e);
  v["allow"] = std::move(a);
  json::array ini;
  for (const std::string& e : rule.initiators) ini.emplace_back(e);
  v["initiators"] = std::move(ini);
  v["modified"] = Now();
  INGOT_RETURN_IF_ERROR(repo_.Put({Kind::kOsVolume, id, v}));
  return v;
}

Result<std::string> ArtifactService::DeployLogPath(const std::string& id_or_name) {
  auto v = repo_.Get(Kind::kOsVolume, id_or_name);
  if (!v.ok()) {
    if (v.status().code() != Code::kNotFound) return v.status();
    INGOT_ASSIGN_OR_RETURN(auto by_name, repo_.FindByName(Kind::kOsVolume, id_or_name));
    if (!by_name) return NotFound("no OS volume " + id_or_name);
    v = std::move(*by_name);
  }
  return options_.dir + "/logs/" + Str(*v, "id") + ".log";
}

}  // namespace ingot::deploy::artifacts
