#include "build/recipe_yaml.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace ingot::build {
namespace {

class YamlRecipeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("ingot-yaml-recipe-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& rel, const std::string& text) {
    std::filesystem::create_directories((dir_ / rel).parent_path());
    std::ofstream(dir_ / rel) << text;
  }
  Status Load(const std::map<std::string, std::string>& dict = {}) {
    auto r = LoadMmdebstrapRecipe(dir_.string(), dict);
    if (r.ok()) recipe_ = *r;
    return r.status();
  }
  std::filesystem::path dir_;
  MmdebstrapRecipe recipe_;
};

TEST_F(YamlRecipeTest, FullRecipeMatchesTheTomlOne) {
  Write("recipe.yaml", R"(# the same recipe as recipe_test's FullRecipe
suite: "{{ suite }}"
variant: minbase
packages: [linux-image-amd64, systemd-sysv]
kernel_parameters: console=ttyS0
hooks:
  customize:
    - echo hi
files:
  - source: files/motd
    path: /etc/motd
    mode: 0600
steps:
  - name: marker
    script: steps/marker.sh
    args: ["{{ marker }}"]
  - name: early
    stage: pre
    run: echo {{ marker }}
)");
  Write("files/motd", "hello\n");
  Write("steps/marker.sh", "#!/bin/sh\necho {{ marker }} > /etc/issue\n");
  ASSERT_TRUE(Load({{"suite", "bookworm"}, {"marker", "M1"}}).ok()) << Load().message();
  EXPECT_EQ(recipe_.suite, "bookworm");
  EXPECT_EQ(recipe_.variant, "minbase");
  EXPECT_EQ(recipe_.packages, (std::vector<std::string>{"linux-image-amd64", "systemd-sysv"}));
  EXPECT_EQ(recipe_.kernel_parameters, "console=ttyS0");
  ASSERT_EQ(recipe_.files.size(), 1u);
  EXPECT_EQ(recipe_.files[0].mode, 0600u);  // YAML 1.1 would read 0600 as 384; a recipe means octal
  EXPECT_EQ(recipe_.files[0].path, "/etc/motd");
  ASSERT_EQ(recipe_.steps.size(), 2u);
  EXPECT_EQ(recipe_.steps[0].stage, "post");
  EXPECT_EQ(recipe_.steps[0].script, "#!/bin/sh\necho M1 > /etc/issue\n");
  EXPECT_EQ(recipe_.steps[0].args, std::vector<std::string>{"M1"});
  EXPECT_EQ(recipe_.steps[1].stage, "pre");
  EXPECT_EQ(recipe_.steps[1].origin, "recipe.yaml:17");
  EXPECT_EQ(recipe_.steps[1].script, "#!/bin/sh\nset -e\necho M1\n");
  EXPECT_EQ(recipe_.hooks["customize"], std::vector<std::string>{"echo hi"});
}

TEST_F(YamlRecipeTest, ErrorsNameFileAndLine) {
  struct Case {
    std::string yaml;
    std::string message;
  };
  std::vector<Case> cases = {
      {"variant: minbase\n", "recipe.yaml:1: 'suite' is required"},
      {"suite: bookworm\n\npackages:\n  - ok\n  - Bad Name\n",
       "recipe.yaml:5: 'Bad Name' is not a Debian package name"},
      {"suite: bookworm\nvariant: tiny\n", "recipe.yaml:2: variant 'tiny' is not"},
      {"suite: bookworm\nsuit: 1\n", "recipe.yaml:2: unknown key 'suit'"},
      {"suite: bookworm\npackages: [a, b\n", "recipe.yaml:"},
      {"suite: bookworm\nsuite: trixie\n",
       "recipe.yaml:2: key 'suite' is given twice (also line 1)"},
      {"suite: bookworm\nkernel_parameters:\n",
       "recipe.yaml:2: kernel_parameters must be a string"},
      {"suite: bookworm\npackages: linux-image-amd64\n",
       "recipe.yaml:2: packages must be a list of strings"},
      {"suite: &s bookworm\nvariant: *s\n", "recipe.yaml:2: YAML aliases"},
      {"- suite\n", "recipe.yaml:1: a recipe is a table of keys"},
      {"suite: bookworm\n---\nsuite: trixie\n",
       "recipe.yaml:2: a recipe file holds one YAML document"},
      {"suite: bookworm\nfiles:\n  - source: ../etc/passwd\n    path: /x\n",
       "recipe.yaml:3: files.source '../etc/passwd' must be a path inside the archive"},
      {"suite: bookworm\nsteps:\n  - name: a\n    run: x\n  - name: a\n    run: y\n",
       "recipe.yaml:5: step name 'a' is used twice"},
      {"suite: bookworm\nsteps:\n  - name: a\n", "recipe.yaml:3: step 'a' needs exactly one of"},
      {"suite: \"{{ release }}\"\n", "recipe.yaml:1: template variable 'release'"},
  };
  for (const auto& c : cases) {
    Write("recipe.yaml", c.yaml);
    Status s = Load();
    EXPECT_EQ(s.code(), Code::kInvalidArgument) << c.yaml;
    EXPECT_EQ(s.message().rfind(c.message, 0), 0u) << s.message() << "\nwanted: " << c.message;
  }
}

TEST_F(YamlRecipeTest, OneRecipeFileOnly) {
  Write("recipe.yaml", "suite: bookworm\n");
  ASSERT_TRUE(Load().ok());
  Write("recipe.toml", "suite = \"bookworm\"\n");
  EXPECT_EQ(Load().message(), "recipe.toml and recipe.yaml: keep one of them");
  std::filesystem::remove(dir_ / "recipe.toml");
  std::filesystem::remove(dir_ / "recipe.yaml");
  EXPECT_EQ(Load().message(),
            "an mmdebstrap recipe needs recipe.toml (or recipe.yaml) at the top of its archive");
  Write("recipe.yml", "suite: trixie\n");
  ASSERT_TRUE(Load().ok());
  EXPECT_EQ(recipe_.suite, "trixie");
}

TEST(YamlDocumentTest, DepthAndEmptyDocuments) {
  auto empty = ParseYamlDocument("# nothing\n", "t.yaml");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->kind, RecipeNode::Kind::kTable);
  EXPECT_TRUE(empty->fields.empty());
  std::string deep(100, '[');
  auto d = ParseYamlDocument(deep, "t.yaml");
  EXPECT_FALSE(d.ok());
  auto tree = ParseYamlDocument("a:\n  b: [x, \"y\"]\n  c: ~\n", "t.yaml");
  ASSERT_TRUE(tree.ok());
  const RecipeNode* a = tree->Get("a");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(a->Get("b"), nullptr);
  EXPECT_EQ(a->Get("b")->items.size(), 2u);
  EXPECT_EQ(a->Get("b")->line, 2);
  EXPECT_EQ(a->Get("c")->kind, RecipeNode::Kind::kOther);
}

}  // namespace
}  // namespace ingot::build
