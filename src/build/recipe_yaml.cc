#include "build/recipe_yaml.h"

#include <yaml.h>

#include <map>
#include <set>

namespace ingot::build {
namespace {

constexpr int kMaxDepth = 32;  // a recipe is three levels deep; more is a mistake or an attack
constexpr size_t kMaxNodes = 100000;

class Parser {
 public:
  explicit Parser(const std::string& text) {
    yaml_parser_initialize(&p_);
    yaml_parser_set_input_string(&p_, reinterpret_cast<const unsigned char*>(text.data()),
                                 text.size());
  }
  ~Parser() { yaml_parser_delete(&p_); }
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  bool Next(yaml_event_t& e) { return yaml_parser_parse(&p_, &e) != 0; }
  std::string Error(const std::string& file) const {
    return file + ":" + std::to_string(p_.problem_mark.line + 1) + ": " +
           (p_.problem ? p_.problem : "YAML syntax error") +
           (p_.context ? std::string(" ") + p_.context : std::string());
  }

 private:
  yaml_parser_t p_;
};

struct Event {
  yaml_event_t e{};
  ~Event() { yaml_event_delete(&e); }
};

int64_t LineOf(const yaml_event_t& e) { return static_cast<int64_t>(e.start_mark.line) + 1; }

bool IsNull(const yaml_event_t& e, const std::string& text) {
  if (e.data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return false;
  static const std::set<std::string> kNull = {"", "~", "null", "Null", "NULL"};
  return kNull.count(text) != 0;
}

class TreeReader {
 public:
  TreeReader(const std::string& text, const std::string& file) : parser_(text), file_(file) {}

  Result<RecipeNode> Document() {
    RecipeNode root;
    root.kind = RecipeNode::Kind::kTable;
    bool have_document = false;
    for (;;) {
      Event ev;
      if (!parser_.Next(ev.e)) return InvalidArgument(parser_.Error(file_));
      switch (ev.e.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT:
          break;
        case YAML_STREAM_END_EVENT:
          return root;
        case YAML_DOCUMENT_START_EVENT: {
          if (have_document) return At(LineOf(ev.e), "a recipe file holds one YAML document");
          have_document = true;
          Event first;
          if (!parser_.Next(first.e)) return InvalidArgument(parser_.Error(file_));
          INGOT_ASSIGN_OR_RETURN(root, Node(first.e, 0));
          // A document of only comments is an empty recipe, not a null.
          if (root.kind == RecipeNode::Kind::kOther) {
            root.kind = RecipeNode::Kind::kTable;
          }
          break;
        }
        default:
          return At(LineOf(ev.e), "unexpected YAML");
      }
    }
  }

 private:
  Status At(int64_t line, const std::string& what) const {
    return InvalidArgument(file_ + ":" + std::to_string(line) + ": " + what);
  }

  // The node that starts with `e` (already read), and everything inside it.
  Result<RecipeNode> Node(const yaml_event_t& e, int depth) {
    if (++nodes_ > kMaxNodes) return At(LineOf(e), "the document is too large");
    if (depth > kMaxDepth) return At(LineOf(e), "the document is nested too deeply");
    RecipeNode n;
    n.line = LineOf(e);
    switch (e.type) {
      case YAML_SCALAR_EVENT: {
        std::string text(reinterpret_cast<const char*>(e.data.scalar.value), e.data.scalar.length);
        if (IsNull(e, text)) {
          n.kind = RecipeNode::Kind::kOther;
        } else {
          n.kind = RecipeNode::Kind::kString;
          n.text = std::move(text);
        }
        return n;
      }
      case YAML_ALIAS_EVENT:
        return At(n.line, "YAML aliases (*name) are not accepted in a recipe");
      case YAML_SEQUENCE_START_EVENT:
        n.kind = RecipeNode::Kind::kList;
        for (;;) {
          Event ev;
          if (!parser_.Next(ev.e)) return InvalidArgument(parser_.Error(file_));
          if (ev.e.type == YAML_SEQUENCE_END_EVENT) return n;
          INGOT_ASSIGN_OR_RETURN(RecipeNode item, Node(ev.e, depth + 1));
          n.items.push_back(std::move(item));
        }
      case YAML_MAPPING_START_EVENT: {
        n.kind = RecipeNode::Kind::kTable;
        std::map<std::string, int64_t> seen;
        for (;;) {
          Event key;
          if (!parser_.Next(key.e)) return InvalidArgument(parser_.Error(file_));
          if (key.e.type == YAML_MAPPING_END_EVENT) return n;
          if (key.e.type != YAML_SCALAR_EVENT) {
            return At(LineOf(key.e), "keys must be plain names");
          }
          std::string name(reinterpret_cast<const char*>(key.e.data.scalar.value),
                           key.e.data.scalar.length);
          if (auto [it, fresh] = seen.emplace(name, LineOf(key.e)); !fresh) {
            return At(LineOf(key.e), "key '" + name + "' is given twice (also line " +
                                         std::to_string(it->second) + ")");
          }
          Event value;
          if (!parser_.Next(value.e)) return InvalidArgument(parser_.Error(file_));
          INGOT_ASSIGN_OR_RETURN(RecipeNode v, Node(value.e, depth + 1));
          n.fields.push_back(RecipeField{std::move(name), std::move(v)});
        }
      }
      default:
        return At(n.line, "unexpected YAML");
    }
  }

  Parser parser_;
  const std::string& file_;
  size_t nodes_ = 0;
};

}  // namespace

Result<RecipeNode> ParseYamlDocument(const std::string& text, const std::string& file) {
  TreeReader reader(text, file);
  return reader.Document();
}

Result<MmdebstrapRecipe> ParseMmdebstrapRecipeYaml(
    const std::string& raw, const std::string& dir,
    const std::map<std::string, std::string>& dictionary, const std::string& file) {
  INGOT_ASSIGN_OR_RETURN(std::string text, RenderTemplate(raw, file, dictionary));
  INGOT_ASSIGN_OR_RETURN(RecipeNode doc, ParseYamlDocument(text, file));
  return CheckMmdebstrapRecipe(doc, file, dir, dictionary);
}

}  // namespace ingot::build
