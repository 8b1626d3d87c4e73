"""OMEMO for a test user: Debian's python3-omemo (with python3-oldmemo for
XEP-0384 0.3, eu.siacs.conversations.axolotl, and python3-twomemo for
urn:xmpp:omemo:2) on a harness.Client, doing over XMPP what a client
such as Conversations, Gajim or Dino does: publish its device list and
bundle on its own account's PEP nodes with open access, read a contact's
from the contact's JID, encrypt for every device found, decrypt.

Only the glue is here; the cryptography and the XML are python-omemo's.
"""
import xml.etree.ElementTree as ET

import omemo
import oldmemo
import oldmemo.etree
import twomemo
import twomemo.etree

from harness import TestFailure

OLD = oldmemo.oldmemo.NAMESPACE          # eu.siacs.conversations.axolotl
TWO = twomemo.twomemo.NAMESPACE          # urn:xmpp:omemo:2
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_EVENT = "http://jabber.org/protocol/pubsub#event"
NS_HINTS = "urn:xmpp:hints"
NS_EME = "urn:xmpp:eme:0"


def devices_node(ns):
    return OLD + ".devicelist" if ns == OLD else TWO + ":devices"


def bundle_node(ns, device_id):
    return OLD + ".bundles:%d" % device_id if ns == OLD else TWO + ":bundles"


class MemoryStorage(omemo.Storage):
    """python-omemo's key/value store, in memory (a test's lifetime)."""

    def __init__(self):
        super().__init__()
        self.data = {}

    async def _load(self, key):
        if key in self.data:
            return omemo.Just(self.data[key])
        return omemo.Nothing()

    async def _store(self, key, value):
        self.data[key] = value

    async def _delete(self, key):
        self.data.pop(key, None)


def xml_str(el):
    """An element as text with its namespace as the default one (what
    clients write; ElementTree would invent an ns0: prefix)."""
    ns = el.tag[1:].split("}")[0] if el.tag.startswith("{") else None
    try:
        return ET.tostring(el, encoding="unicode", default_namespace=ns)
    except ValueError:      # children without a namespace: keep prefixes
        return ET.tostring(el, encoding="unicode")


def _publish_options(extra=()):
    fields = [("FORM_TYPE", "http://jabber.org/protocol/pubsub#publish-options", "hidden"),
              ("pubsub#access_model", "open", None)] + list(extra)
    out = "<publish-options><x xmlns='jabber:x:data' type='submit'>"
    for var, value, ftype in fields:
        out += "<field var='%s'%s><value>%s</value></field>" % (
            var, " type='%s'" % ftype if ftype else "", value)
    return out + "</x></publish-options>"


async def publish(client, node, item_id, payload, extra_options=()):
    """Publish one item on the client's own PEP node, open to anyone."""
    xml = ("<pubsub xmlns='%s'><publish node='%s'><item id='%s'>%s</item></publish>%s"
           "</pubsub>" % (NS_PUBSUB, node, item_id,
                          xml_str(payload),
                          _publish_options(extra_options)))
    r = await client.iq_query(None, "set", xml, timeout=15)
    if r["type"] != "result":
        raise TestFailure("%s could not publish %s: %s" % (
            client.boundjid.bare, node, r["error"]["condition"]))


async def fetch_item(client, jid, node, item_id=None, timeout=25):
    """The payload element of the node's item (the one named, else the
    first), None if the node or item does not exist; the iq error
    condition as a string for any other error."""
    want = "<item id='%s'/>" % item_id if item_id else ""
    r = await client.iq_query(jid, "get", "<pubsub xmlns='%s'><items node='%s'>%s</items>"
                              "</pubsub>" % (NS_PUBSUB, node, want), timeout=timeout)
    if r["type"] != "result":
        cond = r["error"]["condition"]
        return None if cond == "item-not-found" else cond
    for item in r.xml.iter("{%s}item" % NS_PUBSUB):
        if item_id is None or item.get("id") == item_id:
            for payload in item:
                return payload
    return None


def _manager_class(client):
    """A SessionManager whose XMPP side is `client` (python-omemo wants
    its XMPP hooks as static methods: closures over the client)."""

    class Manager(omemo.SessionManager):
        @staticmethod
        async def _upload_bundle(bundle):
            if bundle.namespace == OLD:
                await publish(client, bundle_node(OLD, bundle.device_id), "current",
                              oldmemo.etree.serialize_bundle(bundle))
            else:
                await publish(client, bundle_node(TWO, 0), str(bundle.device_id),
                              twomemo.etree.serialize_bundle(bundle),
                              [("pubsub#max_items", "max", None)])

        @staticmethod
        async def _download_bundle(namespace, bare_jid, device_id):
            item = "current" if namespace == OLD else str(device_id)
            el = await fetch_item(client, bare_jid, bundle_node(namespace, device_id),
                                  None if namespace == OLD else item)
            if el is None:
                raise omemo.BundleNotFound("no bundle %s/%d" % (bare_jid, device_id))
            if isinstance(el, str):
                raise omemo.BundleDownloadFailed("bundle %s/%d: %s" % (bare_jid, device_id, el))
            mod = oldmemo.etree if namespace == OLD else twomemo.etree
            return mod.parse_bundle(el, bare_jid, device_id)

        @staticmethod
        async def _delete_bundle(namespace, device_id):
            pass        # a test's devices live as long as the test

        @staticmethod
        async def _upload_device_list(namespace, device_list):
            mod = oldmemo.etree if namespace == OLD else twomemo.etree
            await publish(client, devices_node(namespace), "current",
                          mod.serialize_device_list(device_list))

        @staticmethod
        async def _download_device_list(namespace, bare_jid):
            el = await fetch_item(client, bare_jid, devices_node(namespace))
            if el is None:
                return {}
            if isinstance(el, str):
                raise omemo.DeviceListDownloadFailed("device list of %s: %s" % (bare_jid, el))
            mod = oldmemo.etree if namespace == OLD else twomemo.etree
            return mod.parse_device_list(el)

        async def _evaluate_custom_trust_level(self, device):
            return omemo.TrustLevel.TRUSTED     # blind trust: a test

        async def _make_trust_decision(self, undecided, identifier):
            for d in undecided:
                await self.set_trust(d.bare_jid, d.identity_key, "trusted")

        @staticmethod
        async def _send_message(message, bare_jid):
            # empty OMEMO messages (a session's heartbeat)
            mod = oldmemo.etree if message.namespace == OLD else twomemo.etree
            client.send_message(bare_jid, None, xml=[
                xml_str(mod.serialize_message(message)),
                "<store xmlns='%s'/>" % NS_HINTS])

    return Manager


class Omemo:
    """One OMEMO device of a client, both protocol versions."""

    def __init__(self, client):
        self.client = client
        self.bare = client.boundjid.bare
        self.sm = None

    async def start(self):
        storage = MemoryStorage()
        self.sm = await _manager_class(self.client).create(
            [oldmemo.Oldmemo(storage), twomemo.Twomemo(storage)], storage,
            self.bare, "test", "trusted")
        return self

    async def own_device_id(self):
        own, _ = await self.sm.get_own_device_information()
        return own.device_id

    async def devices_of(self, ns, jid):
        """The device ids `jid` has under `ns`, read afresh from its JID."""
        await self.sm.refresh_device_list(ns, jid)
        return sorted(d.device_id for d in await self.sm.get_device_information(jid)
                      if (ns, True) in d.active)

    async def send(self, ns, to, text):
        """Encrypt `text` for every device of `to` under `ns` and send it
        the way clients do (fallback body, store hint, EME)."""
        await self.sm.refresh_device_list(ns, to)
        messages, errors = await self.sm.encrypt(frozenset([to]), {OLD: text.encode(),
                                                                   TWO: text.encode()},
                                                 backend_priority_order=[ns])
        if errors:
            raise TestFailure("encrypting for %s: %s" % (to, errors))
        ours = [m for m in messages if m.namespace == ns]
        if not ours:
            raise TestFailure("no %s message for %s" % (ns, to))
        mod = oldmemo.etree if ns == OLD else twomemo.etree
        el = mod.serialize_message(ours[0])
        return self.client.send_message(to, "I sent you an OMEMO encrypted message.", xml=[
            xml_str(el), "<store xmlns='%s'/>" % NS_HINTS,
            "<encryption xmlns='%s' namespace='%s'/>" % (NS_EME, ns)])

    async def decrypt(self, msg, ns):
        """The plaintext of a received message's `ns` element."""
        el = msg.xml.find("{%s}encrypted" % ns)
        if el is None:
            raise TestFailure("no <encrypted xmlns='%s'> in %s" % (ns, msg))
        sender = msg["from"].bare
        if ns == OLD:
            parsed = await oldmemo.etree.parse_message(el, sender, self.bare, self.sm)
        else:
            parsed = twomemo.etree.parse_message(el, sender)
        plaintext, _device, _key = await self.sm.decrypt(parsed)
        return plaintext.decode() if plaintext is not None else None
