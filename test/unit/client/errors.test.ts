import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnectionRefusedError, ReasonCodeError } from '../../../src/client/errors.js';

test('CONNACK refusals read as a person can act on them; v3 and v5 codes are not mixed up', () => {
  const v5 = new ConnectionRefusedError(0x87, 5);
  assert.equal(v5.message, 'Connection refused: not authorized (CONNACK 0x87)');
  assert.equal(v5.reasonCode, 0x87);
  // 0x04 is "bad user name or password" in 3.1.1 and "disconnect with will" in v5.
  const v3 = new ConnectionRefusedError(0x04, 4);
  assert.equal(v3.message, 'Connection refused: bad user name or password (CONNACK 0x04)');
  assert.equal(v3.reasonCode, 0x86);
  assert.equal(v3.returnCode, 0x04);
  assert.equal(new ConnectionRefusedError(0x86, 5, 'try again').message, 'Connection refused: bad user name or password (CONNACK 0x86): try again');
  const e = new ReasonCodeError('PUBLISH', 0x97);
  assert.equal(e.code, 'MQTT_ERR_REFUSED');
  assert.equal(e.message, 'PUBLISH refused: quota exceeded (0x97)');
});
