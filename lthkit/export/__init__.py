"""Export a ticket: turn a masked network into forms that are really smaller or faster, and check each.

lthkit's tickets are dense tensors times a mask: at 1.2% of the weights they cost exactly what the
dense network costs. This layer turns a ticket (a trained network and its masks, or any object with
``.masks``) into:

* a **compact dense** network (:mod:`.compact`): the units no surviving weight connects removed,
  every layer shrunk; ``structure`` says how much of the network unstructured pruning left removable;
* **sparse kernels** (:mod:`.sparse`): CSR matrices on a CPU or GPU, and 2:4 semi-structured
  matrices on a GPU of compute capability ≥ 8.0 after a 2:4 re-pruning (:func:`.sparse.two_four_masks`);
* **files** (:mod:`.storage`): the survivors' values and indices, compressed, beside the dense file.

Every form is checked against the masked dense network on a set of inputs (:mod:`.agreement`) and
timed with ``torch.utils.benchmark`` (:mod:`.timing`); :data:`.forms.FORMS` lists the forms. The
input checks are in :mod:`.ticket`, the network's shape in :mod:`.chain`.

It needs only :mod:`lthkit.core` (not the IMP engine): it exports any network that is a chain of
``Linear`` and ``Conv2d`` layers, whoever trained it. The sparsity-speed study
(:mod:`lthkit.studies.sparsity_speed`, ``python -m lthkit speed``) measures it on IMP's tickets.
"""
