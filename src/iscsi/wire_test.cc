#include "iscsi/wire.h"

#include <gtest/gtest.h>

#include <string>

namespace ingot::iscsi {
namespace {

std::vector<uint8_t> Text(std::initializer_list<std::pair<std::string, std::string>> kv) {
  std::vector<uint8_t> out;
  for (auto& [k, v] : kv) AppendText(out, k, v);
  return out;
}

std::map<std::string, std::string> Keys(std::span<const uint8_t> data) {
  auto p = ParseText(data);
  EXPECT_TRUE(p.ok()) << p.status().ToString();
  std::map<std::string, std::string> m;
  if (p.ok()) {
    for (auto& [k, v] : *p) m[k] = v;
  }
  return m;
}

Bhs LoginRequest(uint8_t csg, uint8_t nsg, bool transit, uint32_t cmd_sn = 7) {
  Bhs b{};
  b[0] = kOpLoginRequest | kImmediateBit;
  b[1] = uint8_t((transit ? kLoginTransit : 0) | csg << 2 | nsg);
  b[8] = 0x80;  // ISID
  b[13] = 0x42;
  PutU32(&b[16], 0x1234);
  PutU32(&b[24], cmd_sn);
  return b;
}

struct LoginReply {
  BhsHeader h;
  uint16_t status = 0;
  uint32_t stat_sn = 0;
  std::map<std::string, std::string> keys;
};

LoginReply Reply(const std::vector<uint8_t>& out) {
  LoginReply r;
  EXPECT_GE(out.size(), kBhsSize);
  r.h = *ParseBhs(out, 1 << 20);
  r.status = GetU16(&out[36]);
  r.stat_sn = GetU32(&out[24]);
  EXPECT_EQ(out.size(), kBhsSize + Padded(r.h.data_length));
  r.keys = Keys(std::span<const uint8_t>(out).subspan(kBhsSize, r.h.data_length));
  return r;
}

TEST(IscsiTextTest, ParsesAndRefuses) {
  auto t = Text({{"InitiatorName", "iqn.2000-01.x:y"}, {"SessionType", "Normal"}});
  auto p = ParseText(t);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->size(), 2u);
  EXPECT_EQ((*p)[0].second, "iqn.2000-01.x:y");
  std::string bad = "NoEquals";
  EXPECT_FALSE(ParseText({reinterpret_cast<const uint8_t*>(bad.data()), bad.size()}).ok());
  auto twice = Text({{"A", "1"}, {"A", "2"}});
  EXPECT_FALSE(ParseText(twice).ok());
  auto empty_key = Text({{"", "1"}});
  EXPECT_FALSE(ParseText(empty_key).ok());
}

TEST(IscsiTextTest, Names) {
  EXPECT_TRUE(ValidIscsiName("iqn.2026-12.io.ingot:vol-1"));
  EXPECT_TRUE(ValidIscsiName("IQN.2026-12.IO.INGOT:X"));
  EXPECT_TRUE(ValidIscsiName("eui.02004567A425678D"));
  EXPECT_FALSE(ValidIscsiName("iqn."));
  EXPECT_FALSE(ValidIscsiName("foo.bar"));
  EXPECT_FALSE(ValidIscsiName("iqn.2026 space"));
  EXPECT_FALSE(ValidIscsiName("iqn.a,b"));
  EXPECT_FALSE(ValidIscsiName("iqn." + std::string(230, 'a')));
  EXPECT_EQ(LowerName("IQN.X:Vol"), "iqn.x:vol");
}

TEST(IscsiBhsTest, ParseBoundsSegments) {
  Bhs b{};
  b[0] = kOpScsiCommand | kImmediateBit;
  b[1] = 0x81;
  b[4] = 2;
  b[7] = 100;
  PutU32(&b[16], 9);
  auto h = ParseBhs(b, 8192);
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->opcode, kOpScsiCommand);
  EXPECT_TRUE(h->immediate);
  EXPECT_EQ(h->ahs_bytes, 8u);
  EXPECT_EQ(h->data_length, 100u);
  EXPECT_EQ(h->itt, 9u);
  b[5] = 1;  // 65636 bytes
  EXPECT_FALSE(ParseBhs(b, 8192).ok());
  EXPECT_FALSE(ParseBhs(std::span<const uint8_t>(b).subspan(0, 47), 8192).ok());
  auto pdu = BuildPdu(b, std::vector<uint8_t>(5, 1));
  EXPECT_EQ(pdu.size(), kBhsSize + 8);
  EXPECT_EQ(pdu[7], 5);
}

TEST(IscsiLoginTest, SecurityThenOperationalThenFullFeature) {
  std::string admitted;
  LoginNegotiation login({}, 3, [&](std::string_view i, std::string_view t) {
    admitted = std::string(i) + " " + std::string(t);
    return Status::Ok();
  });
  std::vector<uint8_t> out;
  auto sec = Text({{"InitiatorName", "iqn.2000-01.test:Client"},
                   {"SessionType", "Normal"},
                   {"TargetName", "iqn.2026-12.io.ingot:vol"},
                   {"AuthMethod", "CHAP,None"}});
  ASSERT_EQ(login.OnRequest(LoginRequest(0, 1, true), sec, out), LoginNegotiation::Next::kContinue);
  LoginReply r = Reply(out);
  EXPECT_EQ(r.h.opcode, kOpLoginResponse);
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.h.flags, kLoginTransit | 0 << 2 | 1);
  EXPECT_EQ(r.keys["AuthMethod"], "None");
  EXPECT_EQ(r.keys["TargetPortalGroupTag"], "1");
  EXPECT_EQ(admitted, "iqn.2000-01.test:client iqn.2026-12.io.ingot:vol");
  EXPECT_EQ(GetU32(&out[28]), 7u);  // ExpCmdSN: the login's CmdSN (it is immediate)

  out.clear();
  auto op = Text({{"HeaderDigest", "CRC32C,None"},
                  {"DataDigest", "None"},
                  {"InitialR2T", "No"},
                  {"ImmediateData", "Yes"},
                  {"MaxRecvDataSegmentLength", "16384"},
                  {"MaxBurstLength", "16776192"},
                  {"FirstBurstLength", "16776192"},
                  {"MaxOutstandingR2T", "8"},
                  {"ErrorRecoveryLevel", "2"},
                  {"X-com.example.Foo", "1"}});
  ASSERT_EQ(login.OnRequest(LoginRequest(1, 3, true), op, out),
            LoginNegotiation::Next::kFullFeature);
  r = Reply(out);
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(GetU16(&out[14]), 3);  // TSIH
  EXPECT_EQ(r.keys["HeaderDigest"], "None");
  EXPECT_EQ(r.keys["InitialR2T"], "No");
  EXPECT_EQ(r.keys["MaxBurstLength"], std::to_string(1u << 20));
  EXPECT_EQ(r.keys["FirstBurstLength"], std::to_string(262144));
  EXPECT_EQ(r.keys["MaxOutstandingR2T"], "1");
  EXPECT_EQ(r.keys["ErrorRecoveryLevel"], "0");
  EXPECT_EQ(r.keys["X-com.example.Foo"], "NotUnderstood");
  EXPECT_EQ(r.keys["MaxRecvDataSegmentLength"], "262144");
  const SessionParams& p = login.params();
  EXPECT_FALSE(p.initial_r2t);
  EXPECT_TRUE(p.immediate_data);
  EXPECT_EQ(p.initiator_max_recv, 16384u);
  EXPECT_EQ(p.target_max_recv, 262144u);
  EXPECT_EQ(login.sequence().stat_sn, r.stat_sn + 1);
}

TEST(IscsiLoginTest, StraightToFullFeatureKeepsDefaults) {
  LoginNegotiation login({}, 1, [](auto, auto) { return Status::Ok(); });
  std::vector<uint8_t> out;
  auto sec = Text({{"InitiatorName", "iqn.2000-01.test:c"},
                   {"SessionType", "Discovery"},
                   {"AuthMethod", "None"}});
  ASSERT_EQ(login.OnRequest(LoginRequest(0, 3, true), sec, out),
            LoginNegotiation::Next::kFullFeature);
  EXPECT_EQ(Reply(out).keys.count("TargetPortalGroupTag"), 0u);  // discovery
  EXPECT_TRUE(login.params().discovery);
  EXPECT_EQ(login.params().target_max_recv, 8192u);
  EXPECT_TRUE(login.params().initial_r2t);
}

TEST(IscsiLoginTest, Refusals) {
  auto status_of = [](Status admit, std::vector<uint8_t> text, Bhs req) {
    LoginNegotiation login({}, 1, [&](auto, auto) { return admit; });
    std::vector<uint8_t> out;
    EXPECT_EQ(login.OnRequest(req, text, out), LoginNegotiation::Next::kClose);
    return GetU16(&out[36]);
  };
  auto normal = Text(
      {{"InitiatorName", "iqn.2000-01.test:c"}, {"TargetName", "iqn.x:v"}, {"AuthMethod", "None"}});
  EXPECT_EQ(status_of(NotFound("x"), normal, LoginRequest(0, 1, true)), kLoginNotFound);
  EXPECT_EQ(status_of(PermissionDenied("x"), normal, LoginRequest(0, 1, true)), kLoginForbidden);
  EXPECT_EQ(status_of(Unavailable("x"), normal, LoginRequest(0, 1, true)),
            kLoginServiceUnavailable);
  EXPECT_EQ(status_of(Status::Ok(), Text({{"TargetName", "iqn.x:v"}}), LoginRequest(0, 1, true)),
            kLoginMissingParameter);
  EXPECT_EQ(status_of(Status::Ok(), Text({{"InitiatorName", "iqn.2000-01.test:c"}}),
                      LoginRequest(0, 1, true)),
            kLoginMissingParameter);
  EXPECT_EQ(status_of(Status::Ok(),
                      Text({{"InitiatorName", "iqn.2000-01.test:c"},
                            {"TargetName", "iqn.x:v"},
                            {"AuthMethod", "CHAP"}}),
                      LoginRequest(0, 1, true)),
            kLoginAuthFailure);
  EXPECT_EQ(status_of(Status::Ok(),
                      Text({{"InitiatorName", "iqn.2000-01.test:c"},
                            {"TargetName", "iqn.x:v"},
                            {"HeaderDigest", "CRC32C"}}),
                      LoginRequest(1, 3, true)),
            kLoginInitiatorError);
  // A key only a target sends (fuzz_iscsi_pdu: answering it repeated TargetPortalGroupTag).
  EXPECT_EQ(status_of(Status::Ok(),
                      Text({{"InitiatorName", "iqn.2000-01.test:c"},
                            {"TargetName", "iqn.x:v"},
                            {"TargetPortalGroupTag", "7"}}),
                      LoginRequest(0, 1, true)),
            kLoginInitiatorError);
  EXPECT_EQ(status_of(Status::Ok(), normal, LoginRequest(0, 2, true)), kLoginInvalidRequest);
  Bhs tsih = LoginRequest(0, 1, true);
  tsih[15] = 9;
  EXPECT_EQ(status_of(Status::Ok(), normal, tsih), kLoginSessionDoesNotExist);
}

TEST(IscsiLoginTest, WhoAndWhatCannotChangeAfterAdmission) {
  // Found by fuzz_iscsi_pdu: a later PDU re-declaring the target or session type would leave a
  // session admitted for one target speaking for another.
  for (auto [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"TargetName", "iqn.2026-12.io.ingot:other"},
           {"SessionType", "Discovery"},
           {"InitiatorName", "iqn.2000-01.test:someone-else"}}) {
    int admissions = 0;
    LoginNegotiation login({}, 1, [&](auto, auto) {
      ++admissions;
      return Status::Ok();
    });
    std::vector<uint8_t> out;
    auto sec =
        Text({{"InitiatorName", "iqn.2000-01.test:c"}, {"TargetName", "iqn.2026-12.io.ingot:vol"}});
    ASSERT_EQ(login.OnRequest(LoginRequest(0, 1, true), sec, out),
              LoginNegotiation::Next::kContinue);
    out.clear();
    EXPECT_EQ(login.OnRequest(LoginRequest(1, 3, true), Text({{key, value}}), out),
              LoginNegotiation::Next::kClose)
        << key;
    EXPECT_EQ(GetU16(&out[36]), kLoginInitiatorError);
    EXPECT_EQ(admissions, 1);
  }
  // Repeating the same values (some initiators do) is fine.
  LoginNegotiation login({}, 1, [](auto, auto) { return Status::Ok(); });
  std::vector<uint8_t> out;
  auto sec =
      Text({{"InitiatorName", "iqn.2000-01.test:c"}, {"TargetName", "iqn.2026-12.io.ingot:vol"}});
  ASSERT_EQ(login.OnRequest(LoginRequest(0, 1, true), sec, out), LoginNegotiation::Next::kContinue);
  EXPECT_EQ(login.OnRequest(
                LoginRequest(1, 3, true),
                Text({{"InitiatorName", "IQN.2000-01.test:C"}, {"SessionType", "Normal"}}), out),
            LoginNegotiation::Next::kFullFeature);
}

TEST(IscsiLoginTest, ContinuedText) {
  LoginNegotiation login({}, 1, [](auto, auto) { return Status::Ok(); });
  auto text = Text({{"InitiatorName", "iqn.2000-01.test:c"}, {"SessionType", "Discovery"}});
  std::vector<uint8_t> out;
  Bhs first = LoginRequest(0, 3, false);
  first[1] |= kLoginContinue;
  ASSERT_EQ(login.OnRequest(first, std::span<const uint8_t>(text).subspan(0, 10), out),
            LoginNegotiation::Next::kContinue);
  EXPECT_EQ(Reply(out).h.data_length, 0u);
  out.clear();
  ASSERT_EQ(
      login.OnRequest(LoginRequest(0, 3, true), std::span<const uint8_t>(text).subspan(10), out),
      LoginNegotiation::Next::kFullFeature);
  EXPECT_EQ(login.params().initiator_name, "iqn.2000-01.test:c");
}

std::array<uint8_t, 16> Cdb(std::initializer_list<uint8_t> bytes) {
  std::array<uint8_t, 16> c{};
  size_t i = 0;
  for (uint8_t b : bytes) c[i++] = b;
  return c;
}

const Disk kDisk{.size = 1 << 20,
                 .read_only = false,
                 .name = "iqn.x:v",
                 .serial = "abc",
                 .max_transfer_bytes = 65536};

TEST(IscsiScsiTest, InquiryAndVpd) {
  auto a = DecodeScsi(Cdb({kScsiInquiry, 0, 0, 0, 96}), 0, kDisk);
  ASSERT_EQ(a.kind, ScsiAction::Kind::kRespond);
  ASSERT_EQ(a.data.size(), 66u);
  EXPECT_EQ(a.data[0], 0);
  EXPECT_EQ(a.data[4], 61);
  EXPECT_EQ(GetU16(&a.data[64]), 0x04c0);  // SBC-3 claimed
  EXPECT_EQ(std::string(a.data.begin() + 8, a.data.begin() + 16), "INGOT   ");
  a = DecodeScsi(Cdb({kScsiInquiry, 0, 0, 0, 5}), 0, kDisk);
  EXPECT_EQ(a.data.size(), 5u);  // cut to the allocation length
  a = DecodeScsi(Cdb({kScsiInquiry, 0, 0, 0, 96}), 1, kDisk);
  EXPECT_EQ(a.data[0], 0x7f);  // no LU there
  a = DecodeScsi(Cdb({kScsiInquiry, 1, 0x00, 0, 96}), 0, kDisk);
  ASSERT_EQ(a.kind, ScsiAction::Kind::kRespond);
  EXPECT_EQ(a.data[3], 6);  // 0x00 0x80 0x83 0xb0 0xb1 0xb2
  a = DecodeScsi(Cdb({kScsiInquiry, 1, 0x80, 0, 96}), 0, kDisk);
  EXPECT_EQ(std::string(a.data.begin() + 4, a.data.end()), "abc");
  a = DecodeScsi(Cdb({kScsiInquiry, 1, 0x83, 0, 96}), 0, kDisk);
  EXPECT_EQ(std::string(a.data.begin() + 8, a.data.end()), "INGOT   iqn.x:v");
  a = DecodeScsi(Cdb({kScsiInquiry, 1, 0xb0, 0, 255}), 0, kDisk);
  ASSERT_EQ(a.data.size(), 64u);
  EXPECT_EQ(GetU32(&a.data[8]), 65536u / 512);
  a = DecodeScsi(Cdb({kScsiInquiry, 1, 0xb7, 0, 255}), 0, kDisk);
  EXPECT_EQ(a.kind, ScsiAction::Kind::kCheck);
  EXPECT_EQ(a.sense.asc, kAscInvalidFieldInCdb);
}

TEST(IscsiScsiTest, CapacityModeSenseLuns) {
  auto a = DecodeScsi(Cdb({kScsiReadCapacity10}), 0, kDisk);
  EXPECT_EQ(GetU32(&a.data[0]), 2047u);
  EXPECT_EQ(GetU32(&a.data[4]), 512u);
  a = DecodeScsi(Cdb({kScsiServiceActionIn16, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32}), 0,
                 kDisk);
  ASSERT_EQ(a.data.size(), 32u);
  EXPECT_EQ(GetU64(&a.data[0]), 2047u);
  a = DecodeScsi(Cdb({kScsiModeSense6, 0, 0x3f, 0, 255}), 0, kDisk);
  ASSERT_EQ(a.kind, ScsiAction::Kind::kRespond);
  EXPECT_EQ(a.data[2] & 0x80, 0);
  EXPECT_EQ(a.data[0] + 1u, a.data.size());
  Disk ro = kDisk;
  ro.read_only = true;
  a = DecodeScsi(Cdb({kScsiModeSense10, 0, 0x08, 0, 0, 0, 0, 0, 255}), 0, ro);
  EXPECT_EQ(a.data[3] & 0x80, 0x80);
  EXPECT_EQ(a.data[8], 0x08);
  a = DecodeScsi(Cdb({kScsiModeSense6, 0, 0x19, 0, 255}), 0, kDisk);
  EXPECT_EQ(a.kind, ScsiAction::Kind::kCheck);
  a = DecodeScsi(Cdb({kScsiReportLuns, 0, 0, 0, 0, 0, 0, 0, 1, 0}), 5, kDisk);
  ASSERT_EQ(a.data.size(), 16u);
  EXPECT_EQ(GetU32(&a.data[0]), 8u);
  EXPECT_EQ(DecodeScsi(Cdb({kScsiTestUnitReady}), 0, kDisk).kind, ScsiAction::Kind::kRespond);
  EXPECT_EQ(DecodeScsi(Cdb({kScsiTestUnitReady}), 1, kDisk).sense.asc, kAscLunNotSupported);
  EXPECT_EQ(DecodeScsi(Cdb({0xc0}), 0, kDisk).sense.asc, kAscInvalidOpcode);
}

TEST(IscsiScsiTest, ReadWriteRanges) {
  auto a = DecodeScsi(Cdb({kScsiRead10, 0, 0, 0, 0, 10, 0, 0, 4}), 0, kDisk);
  ASSERT_EQ(a.kind, ScsiAction::Kind::kRead);
  EXPECT_EQ(a.offset, 5120u);
  EXPECT_EQ(a.length, 2048u);
  a = DecodeScsi(Cdb({kScsiWrite16, 0x08, 0, 0, 0, 0, 0, 0, 0x07, 0xff, 0, 0, 0, 1}), 0, kDisk);
  ASSERT_EQ(a.kind, ScsiAction::Kind::kWrite);
  EXPECT_TRUE(a.fua);
  EXPECT_EQ(a.offset, 2047u * 512);
  a = DecodeScsi(Cdb({kScsiWrite16, 0, 0, 0, 0, 0, 0, 0, 0x07, 0xff, 0, 0, 0, 2}), 0, kDisk);
  EXPECT_EQ(a.sense.asc, kAscLbaOutOfRange);
  a = DecodeScsi(Cdb({kScsiRead16, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1}),
                 0, kDisk);
  EXPECT_EQ(a.sense.asc, kAscLbaOutOfRange);  // no overflow of lba + count
  a = DecodeScsi(Cdb({kScsiRead6, 0, 0, 0, 0}), 0, kDisk);
  EXPECT_EQ(a.kind, ScsiAction::Kind::kCheck);  // 0 means 256 blocks: over max_transfer here
  EXPECT_EQ(a.sense.asc, kAscInvalidFieldInCdb);
  a = DecodeScsi(Cdb({kScsiRead6, 0, 0, 1, 2}), 0, kDisk);
  EXPECT_EQ(a.offset, 512u);
  EXPECT_EQ(a.length, 1024u);
  // RDPROTECT/WRPROTECT: no protection information here.
  EXPECT_EQ(DecodeScsi(Cdb({kScsiRead10, 0x20, 0, 0, 0, 0, 0, 0, 1}), 0, kDisk).sense.asc,
            kAscInvalidFieldInCdb);
  EXPECT_EQ(
      DecodeScsi(Cdb({kScsiWrite16, 0xe0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}), 0, kDisk).kind,
      ScsiAction::Kind::kCheck);
  Disk ro = kDisk;
  ro.read_only = true;
  a = DecodeScsi(Cdb({kScsiWrite10, 0, 0, 0, 0, 0, 0, 0, 1}), 0, ro);
  EXPECT_EQ(a.kind, ScsiAction::Kind::kCheck);
  EXPECT_EQ(a.sense.key, kSenseDataProtect);
  EXPECT_EQ(a.sense.asc, kAscWriteProtected);
  EXPECT_EQ(DecodeScsi(Cdb({kScsiSynchronizeCache10}), 0, kDisk).kind, ScsiAction::Kind::kFlush);
  EXPECT_EQ(DecodeScsi(Cdb({kScsiSynchronizeCache16}), 0, ro).kind, ScsiAction::Kind::kFlush);
}

TEST(IscsiScsiTest, UnmapAndWriteSame) {
  auto a = DecodeScsi(Cdb({kScsiUnmap, 0, 0, 0, 0, 0, 0, 0, 24}), 0, kDisk);
  ASSERT_EQ(a.kind, ScsiAction::Kind::kUnmap);
  EXPECT_EQ(a.data_out(), 24u);
  EXPECT_EQ(DecodeScsi(Cdb({kScsiUnmap}), 0, kDisk).kind, ScsiAction::Kind::kRespond);  // nothing
  Disk ro = kDisk;
  ro.read_only = true;
  EXPECT_EQ(DecodeScsi(Cdb({kScsiUnmap, 0, 0, 0, 0, 0, 0, 0, 24}), 0, ro).sense.key,
            kSenseDataProtect);
  std::vector<uint8_t> list(24, 0);
  PutU16(&list[0], 22);
  PutU16(&list[2], 16);
  PutU64(&list[8], 128);
  PutU32(&list[16], 256);
  auto u = ParseUnmapList(list, kDisk);
  ASSERT_FALSE(u.refusal);
  ASSERT_EQ(u.ranges.size(), 1u);
  EXPECT_EQ(u.ranges[0].offset, 128u * 512);
  EXPECT_EQ(u.ranges[0].length, 256u * 512);
  PutU64(&list[8], 2047);  // 2047 + 256 > 2048 blocks
  EXPECT_EQ(ParseUnmapList(list, kDisk).refusal->asc, kAscLbaOutOfRange);
  PutU16(&list[2], 17);
  EXPECT_EQ(ParseUnmapList(list, kDisk).refusal->asc, kAscInvalidFieldInParameterList);
  PutU16(&list[2], 32);  // more descriptors than bytes
  EXPECT_TRUE(ParseUnmapList(list, kDisk).refusal);

  a = DecodeScsi(Cdb({kScsiWriteSame16, 0x08, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 16}), 0, kDisk);
  ASSERT_EQ(a.kind, ScsiAction::Kind::kWriteSame);
  EXPECT_TRUE(a.unmap);
  EXPECT_EQ(a.offset, 8u * 512);
  EXPECT_EQ(a.length, 16u * 512);
  EXPECT_EQ(a.data_out(), 512u);
  a = DecodeScsi(Cdb({kScsiWriteSame16, 0x01, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 16}), 0, kDisk);
  EXPECT_EQ(a.data_out(), 0u);  // NDOB
  EXPECT_EQ(DecodeScsi(Cdb({kScsiWriteSame16, 0, 0, 0, 0, 0, 0, 0, 0, 8}), 0, kDisk).sense.asc,
            kAscInvalidFieldInCdb);  // zero blocks
  EXPECT_EQ(
      DecodeScsi(Cdb({kScsiWriteSame16, 0, 0, 0, 0, 0, 0, 0, 0x07, 0xff, 0, 0, 0, 2}), 0, kDisk)
          .sense.asc,
      kAscLbaOutOfRange);
  a = DecodeScsi(Cdb({kScsiInquiry, 1, 0xb2, 0, 255}), 0, kDisk);
  ASSERT_EQ(a.data.size(), 8u);
  EXPECT_EQ(a.data[5] & 0xc0, 0xc0);
  a = DecodeScsi(Cdb({kScsiServiceActionIn16, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32}), 0,
                 kDisk);
  EXPECT_EQ(a.data[14] & 0x80, 0x80);  // LBPME
}

TEST(IscsiScsiTest, Verify) {
  EXPECT_EQ(DecodeScsi(Cdb({kScsiVerify10, 0, 0, 0, 0, 1, 0, 0, 8}), 0, kDisk).kind,
            ScsiAction::Kind::kRespond);  // BYTCHK 0
  auto a = DecodeScsi(Cdb({kScsiVerify10, 0x02, 0, 0, 0, 1, 0, 0, 8}), 0, kDisk);
  ASSERT_EQ(a.kind, ScsiAction::Kind::kVerify);
  EXPECT_EQ(a.offset, 512u);
  EXPECT_EQ(a.data_out(), 8u * 512);
  EXPECT_EQ(DecodeScsi(Cdb({kScsiVerify10, 0, 0, 0, 0x08, 0, 0, 0, 1}), 0, kDisk).sense.asc,
            kAscLbaOutOfRange);  // past the end, even without BYTCHK
  EXPECT_EQ(DecodeScsi(Cdb({kScsiVerify16, 0x06, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}), 0, kDisk)
                .sense.asc,
            kAscInvalidFieldInCdb);  // BYTCHK 3
  EXPECT_EQ(DecodeScsi(Cdb({kScsiWriteSame16, 0x18, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}), 0, kDisk)
                .sense.asc,
            kAscInvalidFieldInCdb);  // ANCHOR
}

TEST(IscsiScsiTest, GetLbaStatus) {
  auto a = DecodeScsi(Cdb({kScsiServiceActionIn16, 0x12, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 40}), 0,
                      kDisk);
  ASSERT_EQ(a.kind, ScsiAction::Kind::kLbaStatus);
  EXPECT_EQ(a.offset, 16u * 512);
  EXPECT_EQ(a.length, 40u);
  EXPECT_EQ(DecodeScsi(Cdb({kScsiServiceActionIn16, 0x12, 0, 0, 0, 0, 0, 0, 0x08, 0, 0, 0, 0, 40}),
                       0, kDisk)
                .sense.asc,
            kAscLbaOutOfRange);
  std::vector<LbaExtent> e = {{16, 100, false}, {116, 2000, true}};
  auto d = LbaStatusData(e, 1000);
  ASSERT_EQ(d.size(), 40u);
  EXPECT_EQ(GetU32(&d[0]), 36u);
  EXPECT_EQ(GetU64(&d[24]), 116u);
  EXPECT_EQ(GetU32(&d[32]), 2000u);
  EXPECT_EQ(d[36], 1);
  EXPECT_EQ(LbaStatusData(e, 24).size(), 24u);
  a = DecodeScsi(Cdb({kScsiInquiry, 1, 0xb2, 0, 255}), 0, kDisk);
  EXPECT_EQ(a.data[5] & 0x04, 0x04);  // LBPRZ
}

TEST(IscsiScsiTest, SenseSegment) {
  auto s = SenseSegment({kSenseDataProtect, kAscWriteProtected});
  ASSERT_EQ(s.size(), 20u);
  EXPECT_EQ(GetU16(&s[0]), 18);
  EXPECT_EQ(s[2], 0x70);
  EXPECT_EQ(s[4], kSenseDataProtect);
  EXPECT_EQ(s[14], 0x27);
  EXPECT_EQ(SenseFor(IoError("x"), true).key, kSenseMediumError);
  EXPECT_EQ(SenseFor(StorageFull("x"), true).asc, kAscSpaceAllocationFailed);
}

TEST(IscsiPduTest, ResponsesCarrySequence) {
  Sequence seq{5, 6, 37};
  auto r = BuildPdu(ScsiResponseHeader(9, kStatusGood, kResidualUnderflow, 100, seq));
  EXPECT_EQ(r[0], kOpScsiResponse);
  EXPECT_EQ(r[1], kFinalBit | kResidualUnderflow);
  EXPECT_EQ(GetU32(&r[16]), 9u);
  EXPECT_EQ(GetU32(&r[24]), 5u);
  EXPECT_EQ(GetU32(&r[32]), 37u);
  EXPECT_EQ(GetU32(&r[44]), 100u);
  Bhs d = DataInHeader(9, 0, 2, 4096, true, true, kStatusGood, 0, 0, seq);
  EXPECT_EQ(d[1], kFinalBit | kDataInStatus);
  EXPECT_EQ(GetU32(&d[36]), 2u);
  EXPECT_EQ(GetU32(&d[40]), 4096u);
  Bhs partial = DataInHeader(9, 0, 0, 0, false, false, kStatusGood, 0, 0, seq);
  EXPECT_EQ(partial[1], 0);
  EXPECT_EQ(GetU32(&partial[24]), 0u);
  Bhs r2t = R2tHeader(9, 0, 77, 1, 8192, 65536, seq);
  EXPECT_EQ(r2t[0], kOpR2t);
  EXPECT_EQ(GetU32(&r2t[20]), 77u);
  EXPECT_EQ(GetU32(&r2t[44]), 65536u);
  Bhs bad{};
  auto rej = BuildReject(kRejectProtocolError, bad, seq);
  EXPECT_EQ(rej.size(), 96u);
}

}  // namespace
}  // namespace ingot::iscsi
