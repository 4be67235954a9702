// iSCSI's numbers (RFC 7143) and the SCSI ones our target answers (SPC-4, SBC-3). Everything on the
// wire is big-endian.
#pragma once

#include <cstddef>
#include <cstdint>

namespace ingot::iscsi {

// Every PDU starts with a 48-byte Basic Header Segment; AHS and data segments are padded to 4.
inline constexpr size_t kBhsSize = 48;

// Initiator opcodes (byte 0, low 6 bits; bit 6 is the immediate flag).
inline constexpr uint8_t kOpNopOut = 0x00;
inline constexpr uint8_t kOpScsiCommand = 0x01;
inline constexpr uint8_t kOpTaskMgmtRequest = 0x02;
inline constexpr uint8_t kOpLoginRequest = 0x03;
inline constexpr uint8_t kOpTextRequest = 0x04;
inline constexpr uint8_t kOpDataOut = 0x05;
inline constexpr uint8_t kOpLogoutRequest = 0x06;
inline constexpr uint8_t kOpSnackRequest = 0x10;
// Target opcodes.
inline constexpr uint8_t kOpNopIn = 0x20;
inline constexpr uint8_t kOpScsiResponse = 0x21;
inline constexpr uint8_t kOpTaskMgmtResponse = 0x22;
inline constexpr uint8_t kOpLoginResponse = 0x23;
inline constexpr uint8_t kOpTextResponse = 0x24;
inline constexpr uint8_t kOpDataIn = 0x25;
inline constexpr uint8_t kOpLogoutResponse = 0x26;
inline constexpr uint8_t kOpR2t = 0x31;
inline constexpr uint8_t kOpReject = 0x3f;

inline constexpr uint8_t kImmediateBit = 0x40;
inline constexpr uint8_t kFinalBit = 0x80;
inline constexpr uint32_t kReservedTag = 0xffffffff;

// SCSI Command flags (byte 1).
inline constexpr uint8_t kCmdRead = 0x40;
inline constexpr uint8_t kCmdWrite = 0x20;
// SCSI Response / Data-In flags (byte 1).
inline constexpr uint8_t kResidualOverflow = 0x04;
inline constexpr uint8_t kResidualUnderflow = 0x02;
inline constexpr uint8_t kDataInStatus = 0x01;

// Login flags (byte 1): Transit, Continue, CSG (bits 2-3), NSG (bits 0-1).
inline constexpr uint8_t kLoginTransit = 0x80;
inline constexpr uint8_t kLoginContinue = 0x40;
inline constexpr uint8_t kStageSecurity = 0;
inline constexpr uint8_t kStageOperational = 1;
inline constexpr uint8_t kStageFullFeature = 3;
// Text flags.
inline constexpr uint8_t kTextContinue = 0x40;

// Login status class and detail (byte 36, 37), as one 16-bit value.
inline constexpr uint16_t kLoginSuccess = 0x0000;
inline constexpr uint16_t kLoginInitiatorError = 0x0200;
inline constexpr uint16_t kLoginAuthFailure = 0x0201;
inline constexpr uint16_t kLoginForbidden = 0x0202;
inline constexpr uint16_t kLoginNotFound = 0x0203;
inline constexpr uint16_t kLoginMissingParameter = 0x0207;
inline constexpr uint16_t kLoginSessionDoesNotExist = 0x020a;
inline constexpr uint16_t kLoginInvalidRequest = 0x020b;
inline constexpr uint16_t kLoginTargetError = 0x0300;
inline constexpr uint16_t kLoginServiceUnavailable = 0x0301;

// Reject reasons.
inline constexpr uint8_t kRejectProtocolError = 0x04;
inline constexpr uint8_t kRejectNotSupported = 0x05;
inline constexpr uint8_t kRejectInvalidField = 0x09;

// Task management functions and responses.
inline constexpr uint8_t kTmfAbortTask = 1;
inline constexpr uint8_t kTmfTaskReassign = 8;
inline constexpr uint8_t kTmfComplete = 0;
inline constexpr uint8_t kTmfNoTask = 1;
inline constexpr uint8_t kTmfNotSupported = 5;

// SCSI status.
inline constexpr uint8_t kStatusGood = 0x00;
inline constexpr uint8_t kStatusCheckCondition = 0x02;

// Sense keys.
inline constexpr uint8_t kSenseNoSense = 0x0;
inline constexpr uint8_t kSenseNotReady = 0x2;
inline constexpr uint8_t kSenseMediumError = 0x3;
inline constexpr uint8_t kSenseHardwareError = 0x4;
inline constexpr uint8_t kSenseIllegalRequest = 0x5;
inline constexpr uint8_t kSenseDataProtect = 0x7;
inline constexpr uint8_t kSenseAbortedCommand = 0xb;
inline constexpr uint8_t kSenseMiscompare = 0xe;

// Additional sense codes (ASC << 8 | ASCQ).
inline constexpr uint16_t kAscNone = 0x0000;
inline constexpr uint16_t kAscInvalidOpcode = 0x2000;
inline constexpr uint16_t kAscLbaOutOfRange = 0x2100;
inline constexpr uint16_t kAscInvalidFieldInCdb = 0x2400;
inline constexpr uint16_t kAscInvalidFieldInParameterList = 0x2600;
inline constexpr uint16_t kAscLunNotSupported = 0x2500;
inline constexpr uint16_t kAscWriteProtected = 0x2700;
inline constexpr uint16_t kAscUnrecoveredReadError = 0x1100;
inline constexpr uint16_t kAscWriteError = 0x0c00;
inline constexpr uint16_t kAscSpaceAllocationFailed = 0x2707;
inline constexpr uint16_t kAscInternalFailure = 0x4400;
inline constexpr uint16_t kAscMiscompareDuringVerify = 0x1d00;

// SCSI operation codes we answer.
inline constexpr uint8_t kScsiTestUnitReady = 0x00;
inline constexpr uint8_t kScsiRequestSense = 0x03;
inline constexpr uint8_t kScsiRead6 = 0x08;
inline constexpr uint8_t kScsiWrite6 = 0x0a;
inline constexpr uint8_t kScsiInquiry = 0x12;
inline constexpr uint8_t kScsiModeSense6 = 0x1a;
inline constexpr uint8_t kScsiStartStopUnit = 0x1b;
inline constexpr uint8_t kScsiPreventAllow = 0x1e;
inline constexpr uint8_t kScsiReadCapacity10 = 0x25;
inline constexpr uint8_t kScsiRead10 = 0x28;
inline constexpr uint8_t kScsiWrite10 = 0x2a;
inline constexpr uint8_t kScsiVerify10 = 0x2f;
inline constexpr uint8_t kScsiVerify16 = 0x8f;
inline constexpr uint8_t kScsiSynchronizeCache10 = 0x35;
inline constexpr uint8_t kScsiModeSense10 = 0x5a;
inline constexpr uint8_t kScsiRead16 = 0x88;
inline constexpr uint8_t kScsiWrite16 = 0x8a;
inline constexpr uint8_t kScsiSynchronizeCache16 = 0x91;
inline constexpr uint8_t kScsiServiceActionIn16 = 0x9e;
inline constexpr uint8_t kScsiReadCapacity16Action = 0x10;
inline constexpr uint8_t kScsiGetLbaStatusAction = 0x12;
inline constexpr uint8_t kScsiReportLuns = 0xa0;
inline constexpr uint8_t kScsiUnmap = 0x42;
inline constexpr uint8_t kScsiWriteSame16 = 0x93;

// What iSCSI names and text may be: RFC 7143 limits names to 223 bytes and a key=value pair's value
// to 8192 for the ones we read.
inline constexpr size_t kMaxNameSize = 223;
inline constexpr size_t kMaxValueSize = 8192;

}  // namespace ingot::iscsi
