Attribute VB_Name = "ComplaintDeskRibbon"
Option Explicit

' One callback for every ribbon button: the button id goes to Python, which decides what to do.
' Adding a button therefore changes only ribbon.xml and excel_addin/actions.py, never this VBA.
' Keep this file in codepage 1252: the Chinese labels live in ribbon.xml and in Python.

Sub OnButton(control As IRibbonControl)
    If Workbooks.Count = 0 Then
        MsgBox "Please open a complaint workbook first.", vbExclamation, "Complaint Desk"
        Exit Sub
    End If
    RunPython "import excel_addin; excel_addin.dispatch('" & control.Id & "', '" & XLWINGS_VERSION & "')"
End Sub
