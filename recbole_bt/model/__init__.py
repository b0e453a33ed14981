"""The package's own models. Each is a RecBole model class exported here by name; `recbole_bt.get_model`
looks here first, then at RecBole's built-ins."""
from recbole_bt.model.btpretrain import BTPretrain
from recbole_bt.model.btsrec import BTSRec
from recbole_bt.model.cl4srec import CL4SRec
from recbole_bt.model.clue import CLUE, CLUEZero
from recbole_bt.model.dual_encoder import DualEncoder
from recbole_bt.model.duorec import DuoRec
from recbole_bt.model.sasrec import SASRec

__all__ = ["BTPretrain", "BTSRec", "CL4SRec", "CLUE", "CLUEZero", "DualEncoder", "DuoRec", "SASRec"]
