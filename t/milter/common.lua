-- SPDX-License-Identifier: MIT
-- t/milter/common.lua: helpers for the miltertest scripts.
-- miltertest errors out for steps the milter did not ask for (negotiated
-- away), so optional steps go through pcall.

function fail(msg)
  error(msg, 0)
end

-- a connection after negotiation and connection information
function open_conn(sock)
  local conn = mt.connect(sock, 40, 0.05)
  if conn == nil then fail("cannot connect to " .. sock) end
  -- Offer every step but the no-reply ones (0xf7f): miltertest waits for an
  -- answer at each step.  Postfix offers them, and the e2e tests cover that.
  if mt.negotiate(conn, 6, 0x1ff, 0xf7f) ~= nil then fail("negotiate") end
  if mt.conninfo(conn, "client.example", "192.0.2.10") ~= nil then fail("conninfo") end
  return conn
end

-- send one message; returns the connection after EOM (caller checks)
function send(sock, from, rcpts, headers, body)
  local conn = open_conn(sock)
  pcall(mt.helo, conn, "client.example")
  mt.macro(conn, SMFIC_MAIL, "i", "TESTQID")
  if mt.mailfrom(conn, from) ~= nil then fail("mailfrom") end
  for _, r in ipairs(rcpts) do
    if mt.rcptto(conn, r) ~= nil then fail("rcptto " .. r) end
  end
  pcall(mt.data, conn)
  for _, h in ipairs(headers) do
    if mt.header(conn, h[1], h[2]) ~= nil then fail("header " .. h[1]) end
  end
  pcall(mt.eoh, conn)
  -- the milter asks for no body unless a rule looks at the message size
  if body ~= nil then pcall(mt.bodystring, conn, body) end
  if mt.eom(conn) ~= nil then fail("eom") end
  return conn
end

function expect_reply(conn, want, what)
  local got = mt.getreply(conn)
  if got ~= want then fail(what .. ": reply " .. tostring(got) .. ", wanted " .. tostring(want)) end
end
