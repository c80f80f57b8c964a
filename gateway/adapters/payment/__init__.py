"""Fee payment providers: the national portal's payment platform and VNPay (issue 3, in progress)."""
