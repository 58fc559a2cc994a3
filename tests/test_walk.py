"""The one walk over a block tree (sngan_gluon.nn.walk): order, sharing, paths, rewrites."""
import sngan_gluon  # noqa: F401  (makes mxnet importable)
from mxnet.gluon import nn

from sngan_gluon.models._common import to_sync_batchnorm
from sngan_gluon.nn import SNConv2D
from sngan_gluon.nn.walk import named_blocks, replace_blocks, sn_layers, weight_layers


class _Net(nn.HybridBlock):
    """body: [conv, shared dense, inner: [shared dense, SN conv]], head: transposed conv, bn."""

    def __init__(self):
        super(_Net, self).__init__()
        with self.name_scope():
            self.shared = nn.Dense(4, in_units=4)
            self.body = nn.HybridSequential()
            inner = nn.HybridSequential()
            inner.add(self.shared, SNConv2D(3, 3))
            self.body.add(nn.Conv2D(3, 3), self.shared, inner)
            self.head = nn.Conv2DTranspose(3, 3)
            self.bn = nn.BatchNorm()

    def hybrid_forward(self, F, x):
        return x


def test_named_blocks_are_pre_order_each_once_under_the_first_path():
    net = _Net()
    paths = [(path, type(block).__name__) for path, block in named_blocks(net)]
    assert paths == [("", "_Net"), ("shared", "Dense"), ("body", "HybridSequential"),
                     ("body.0", "Conv2D"), ("body.2", "HybridSequential"),
                     ("body.2.1", "SNConv2D"), ("head", "Conv2DTranspose"), ("bn", "BatchNorm")]


def test_weight_layers_skip_the_root_and_batchnorm_and_take_a_prefix():
    net = _Net()
    assert list(weight_layers(net)) == ["shared", "body.0", "body.2.1", "head"]
    assert list(weight_layers(net, "D.")) == ["D.shared", "D.body.0", "D.body.2.1", "D.head"]
    assert [layer.name for layer in sn_layers(net)] == [net.body[2][1].name]


def test_replace_blocks_fills_every_slot_of_a_shared_child_once():
    net = _Net()
    made = []

    def to_sn(path, block):
        if type(block) is nn.Dense:  # noqa: E721
            made.append(path)
            return nn.Dense(4, in_units=4, prefix=block.prefix)
        return block

    replaced = replace_blocks(net, to_sn)
    assert made == ["shared"] and len(replaced) == 1
    new = net.body[1]
    assert type(new) is nn.Dense and new is not replaced[next(iter(replaced))][0]
    assert net.shared is new and net.body[2][0] is new  # the attribute is re-pointed too


def test_to_sync_batchnorm_replaces_the_slot_and_the_attribute():
    net = _Net()
    to_sync_batchnorm(net, 2)
    assert type(net.bn).__name__ == "SyncBatchNorm" and dict(named_blocks(net))["bn"] is net.bn
